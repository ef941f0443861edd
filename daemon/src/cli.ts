/**
 * The daemon's single entry point: `ingest | process | derive | alerts | all | simulate | decode |
 * replay-dead`.
 * Thin on purpose: each role lives in its own folder and exports one `run*` function.
 */
import { setPriority } from 'node:os';
import { loadConfigOrExitCode } from './config.js';
import { createLogger } from './observability/logger.js';

export interface Running {
  /** Stops gracefully (finish in-flight work, deregister, close connections). */
  stop(reason?: string): Promise<void>;
}

const USAGE = `usage: daemon <role> [options]
  ingest     TCP/UDP server for devices (port 5027)
  process    stream consumer writing positions and device state
  derive     history worker: trips, stops, events, daily summaries (see: daemon derive --help)
  alerts     webhook sender and periodic alert checks (offline, no_fix, min durations)
  all        ingest + process + derive + alerts in one process
  simulate   device simulator (see: daemon simulate --help)
  decode     decode hex or raw Teltonika bytes to JSON (see: daemon decode --help)
  replay-dead  list or replay dead letters of telemetry:dead (see: daemon replay-dead --help)`;

async function main(argv: string[]): Promise<number> {
  const [role, ...rest] = argv;
  if (role === 'decode') return (await import('./protocol/decode-cli.js')).runDecode(rest);
  if (role === 'simulate') return (await import('./simulator/cli.js')).runSimulate(rest);
  if (role === 'replay-dead') return (await import('./processor/replay-dead-cli.js')).runReplayDead(rest);
  if (role === 'derive') {
    const { parseDeriveArgs, DERIVE_USAGE } = await import('./history/cli.js');
    const cmd = parseDeriveArgs(rest);
    if (cmd.kind === 'help' || cmd.kind === 'error') {
      process.stderr.write(`${cmd.kind === 'error' ? `${cmd.message}\n` : ''}${DERIVE_USAGE}\n`);
      return cmd.kind === 'help' ? 0 : 2;
    }
    if (cmd.kind === 'range') {
      const config = loadConfigOrExitCode();
      if (config === 2) return 2;
      const { deriveRange } = await import('./history/main.js');
      const { alertingExtensions } = await import('./alerts/history-extensions.js');
      // The same derivers and hooks as the worker: a recomputed window keeps its events and alerts.
      for (const r of await deriveRange(config, cmd, alertingExtensions(config)))
        process.stdout.write(`${JSON.stringify(r)}\n`);
      return 0;
    }
  }
  if (role !== 'ingest' && role !== 'process' && role !== 'derive' && role !== 'alerts' && role !== 'all') {
    process.stderr.write(`${USAGE}\n`);
    return role === undefined || role === '--help' || role === '-h' ? 0 : 2;
  }

  const config = loadConfigOrExitCode();
  if (config === 2) return 2;
  const logger = createLogger(config.LOG_LEVEL, { instance_id: config.INSTANCE_ID });
  const running: Running[] = [];
  try {
    if (role === 'ingest' || role === 'all') {
      running.push(await (await import('./ingestion/main.js')).runIngest(config, logger));
    }
    if (role === 'process' || role === 'all') {
      running.push(await (await import('./processor/main.js')).runProcess(config, logger));
    }
    if (role === 'derive' && config.HISTORY_NICE > 0) {
      // Only a process of its own: niceness is per process, and `all` holds the processor too.
      try {
        setPriority(config.HISTORY_NICE);
      } catch (err) {
        logger.warn({ err: String(err) }, 'could not lower the derive role’s CPU priority');
      }
    }
    if (role === 'derive' || (role === 'all' && config.HISTORY_ENABLED)) {
      const { alertingExtensions } = await import('./alerts/history-extensions.js');
      const extensions = alertingExtensions(config, logger);
      running.push(await (await import('./history/main.js')).runDerive(config, logger, { extensions }));
    }
    if (role === 'alerts' || role === 'all') {
      running.push(await (await import('./alerts/main.js')).runAlerts(config, logger));
    }
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    await Promise.allSettled(running.map((r) => r.stop('start-up failed')));
    return 1;
  }

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'stopping');
      Promise.allSettled(running.map((r) => r.stop(signal))).then((results) => {
        const failed = results.some((r) => r.status === 'rejected');
        resolve(failed ? 1 : 0);
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
