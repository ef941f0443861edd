/**
 * `daemon simulate` / `npm run simulate -- ...`: a fleet of simulated devices against a running
 * ingestion server. Thin: argument parsing and printing; the work is in fleet.ts.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfigOrExitCode } from '../config.js';
import { DEFAULT_DEVICE_PORT } from '../contract/limits.js';
import { connectDatabase } from '../db.js';
import { CODEC_8, CODEC_8E, CODEC_16 } from '../protocol/index.js';
import { type FleetOptions, type FleetProgress, type FleetSummary, runFleet } from './fleet.js';
import { registerDevices } from './register.js';

const USAGE = `usage: npm run simulate -- [options]
  --devices N          simulated devices (default 10)
  --rate R             frames per second per device; 0 = next frame right after the ack (default 1)
  --records N          records per frame (default 10)
  --codec 8|8E|16      AVL codec (default 8E)
  --transport tcp|udp  (default tcp)
  --host H --port P    ingestion address (default 127.0.0.1 and INGEST_PORT or 5027)
  --duration S         seconds of sending, then drain and print the summary (default: until Ctrl-C)
  --seed N             reproducible IMEIs and tracks (default 1)
  --register           first insert the IMEIs as enabled devices (DB_* env, as the daemon)
  --center LAT,LON     start area (default: a city picked per device)
  --radius-km KM       start radius around the centre (default 5)
  --processes N        worker processes (forced up for > 18,000 devices: open-file limit)
  --ack-timeout-ms MS  resend after this long without an ack (default 10000)
  --idle               connect and log in, send nothing
  --json               print the summary as JSON`;

const CODECS: Record<string, number> = { '8': CODEC_8, '08': CODEC_8, '8e': CODEC_8E, '16': CODEC_16, '10': CODEC_16 };

function num(name: string, value: string | undefined, def: number, min = 0): number {
  if (value === undefined) return def;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number ≥ ${min}, got "${value}"`);
  return n;
}

class UsageError extends Error {}

export function parseSimulateArgs(argv: string[]): { fleet: FleetOptions; register: boolean; json: boolean } | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      devices: { type: 'string' },
      rate: { type: 'string' },
      records: { type: 'string' },
      codec: { type: 'string' },
      transport: { type: 'string' },
      host: { type: 'string' },
      port: { type: 'string' },
      duration: { type: 'string' },
      seed: { type: 'string' },
      register: { type: 'boolean' },
      center: { type: 'string' },
      'radius-km': { type: 'string' },
      processes: { type: 'string' },
      'ack-timeout-ms': { type: 'string' },
      idle: { type: 'boolean' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return null;
  const codec = CODECS[(values.codec ?? '8E').toLowerCase()];
  if (codec === undefined) throw new UsageError(`--codec must be 8, 8E or 16, got "${values.codec}"`);
  const transport = values.transport ?? 'tcp';
  if (transport !== 'tcp' && transport !== 'udp') throw new UsageError(`--transport must be tcp or udp`);
  let center: FleetOptions['center'];
  if (values.center !== undefined) {
    const [lat, lon] = values.center.split(',').map(Number);
    if (lat === undefined || lon === undefined || !(Math.abs(lat) <= 90) || !(Math.abs(lon) <= 180)) {
      throw new UsageError(`--center must be LAT,LON in degrees, got "${values.center}"`);
    }
    center = { lat, lon };
  }
  const records = num('records', values.records, 10, 1);
  if (!Number.isInteger(records) || records > 255) throw new UsageError('--records must be an integer 1-255');
  return {
    fleet: {
      devices: Math.floor(num('devices', values.devices, 10, 1)),
      rate: num('rate', values.rate, 1),
      records,
      codec,
      transport,
      host: values.host ?? '127.0.0.1',
      port: Math.floor(num('port', values.port, Number(process.env.INGEST_PORT) || DEFAULT_DEVICE_PORT, 1)),
      duration: values.duration === undefined ? undefined : num('duration', values.duration, 0),
      seed: Math.floor(num('seed', values.seed, 1)),
      center,
      radiusKm: values['radius-km'] === undefined ? undefined : num('radius-km', values['radius-km'], 5),
      processes: values.processes === undefined ? undefined : Math.floor(num('processes', values.processes, 1, 1)),
      ackTimeoutMs:
        values['ack-timeout-ms'] === undefined ? undefined : num('ack-timeout-ms', values['ack-timeout-ms'], 0, 100),
      idle: values.idle === true,
    },
    register: values.register === true,
    json: values.json === true,
  };
}

export function formatSummary(s: FleetSummary): string {
  const c = s.counters;
  const perSec = s.sendMs > 0 ? Math.round((c.recordsAcked * 1000) / Math.max(s.sendMs, 1)) : 0;
  return [
    `devices: ${s.devices} (${s.transport}, codec 0x${s.codec.toString(16)}, ${s.processes} process${s.processes > 1 ? 'es' : ''}), connected at end: ${s.connected}`,
    `records sent: ${c.recordsSent}  acknowledged: ${c.recordsAcked}  resent: ${c.recordsResent}  unacknowledged at end: ${s.unacked}`,
    `frames sent: ${c.framesSent}  acknowledged: ${c.framesAcked}  wrong acks: ${c.wrongAcks}  ack timeouts: ${c.ackTimeouts}`,
    `logins refused: ${c.refusals}  reconnects: ${c.reconnects}  connect errors: ${c.connectErrors}  commands answered: ${c.commandsAnswered}`,
    `ack latency: p50 ${s.ackLatencyMs.p50} ms  p99 ${s.ackLatencyMs.p99} ms  max ${s.ackLatencyMs.max} ms ` +
      `(simulator event-loop delay p99 ${s.simulatorLoopDelayP99Ms} ms is included)`,
    `ramp-up ${(s.rampMs / 1000).toFixed(1)} s, sending ${(s.sendMs / 1000).toFixed(1)} s (~${perSec} acknowledged records/s)`,
  ].join('\n');
}

function formatProgress(p: FleetProgress): string {
  const c = p.counters;
  return `[${(p.elapsedMs / 1000).toFixed(0)}s] connected ${p.connected}/${p.devices}  sent ${c.recordsSent}  acked ${c.recordsAcked}  resent ${c.recordsResent}  refused ${c.refusals}  commands ${c.commandsAnswered}`;
}

/** The repo's `.env` (what `npm start` uses), without overriding variables already set. */
function loadDotEnv(): void {
  if (existsSync('.env') && typeof process.loadEnvFile === 'function') {
    try {
      process.loadEnvFile('.env');
    } catch {
      // an unreadable .env is the daemon's concern; defaults apply
    }
  }
}

export async function runSimulate(argv: string[]): Promise<number> {
  loadDotEnv();
  let parsed: ReturnType<typeof parseSimulateArgs>;
  try {
    parsed = parseSimulateArgs(argv);
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n${USAGE}\n`);
    return 2;
  }
  if (parsed === null) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { fleet, register, json } = parsed;

  if (register) {
    const config = loadConfigOrExitCode();
    if (config === 2) return 2;
    const db = connectDatabase(config, { min: 0, max: 2 });
    try {
      const added = await registerDevices(db, { devices: fleet.devices, seed: fleet.seed ?? 1 });
      process.stderr.write(`registered ${added} new device(s) of ${fleet.devices} in ${config.DB_DATABASE}\n`);
    } catch (err) {
      process.stderr.write(`--register failed: ${err instanceof Error ? err.message : String(err)}\n`);
      return 1;
    } finally {
      await db.destroy();
    }
  }

  const abort = new AbortController();
  const onSignal = () => {
    if (abort.signal.aborted) process.exit(130);
    process.stderr.write('stopping: waiting for outstanding acks (Ctrl-C again to quit now)\n');
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const summary = await runFleet({
      ...fleet,
      signal: abort.signal,
      onProgress: json ? undefined : (p) => process.stderr.write(`${formatProgress(p)}\n`),
      onConnected: (p) =>
        process.stderr.write(`connected ${p.connected}/${p.devices} devices in ${(p.elapsedMs / 1000).toFixed(1)} s\n`),
    });
    if (json) {
      const { histogram: _h, acked: _a, ...plain } = summary;
      process.stdout.write(`${JSON.stringify(plain)}\n`);
    } else process.stdout.write(`${formatSummary(summary)}\n`);
    return summary.connected === 0 && !fleet.idle && summary.counters.recordsAcked === 0 ? 1 : 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
