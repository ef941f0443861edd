/**
 * Outbound commands: this instance reads its own `commands:outbound:{instance_id}` stream (consumer
 * group `ingestion`) and delivers each command to the device socket it holds.
 *
 * Codec 12 replies carry no id, so each device has at most one command in flight; the next
 * Codec 12/13 reply on that socket answers it, or the command fails after `commandTimeoutMs`.
 * Commands arriving meanwhile wait in order. A command is written on the session's own queue, so
 * it always follows the acknowledgement of any AVL frame received before it. Every outcome goes to
 * `commands:responses`; the outbound entry is XACKed only after its final outcome was written, so
 * a crash leaves it pending (re-read at start-up) instead of lost.
 */
import type { Logger } from 'pino';
import {
  type CommandOutcome,
  encodeCommandResponse,
  ensureGroup,
  GROUPS,
  type OutboundCommand,
  OutboundCommandMessage,
  type ReadEntry,
  type RedisKeys,
  StreamReader,
} from '../contract/index.js';
import {
  CODEC_12,
  CODEC_13,
  commandReplyText,
  decodeCommandFrame,
  encodeCodec12Command,
  isProtocolError,
  isTextPayload,
} from '../protocol/index.js';
import type { IngestMetrics } from './metrics.js';
import type { IngestRedis } from './redis.js';
import type { DeviceRegistry } from './registry.js';
import type { TcpSession } from './session.js';
import type { StreamWriter } from './stream-writer.js';

interface Queued {
  entryId: string;
  command: OutboundCommand;
}

interface InFlight extends Queued {
  session: TcpSession;
  timer: NodeJS.Timeout | null;
  written: boolean;
}

interface OwedReport {
  entryId: string;
  commandId: string;
  outcome: CommandOutcome;
  fields: string[];
  final: boolean;
  /** The response is in the stream; only the XACK is still owed. */
  written: boolean;
}

interface DeviceQueue {
  waiting: Queued[];
  inFlight: InFlight | null;
}

export interface CommandSenderOptions {
  instanceId: string;
  keys: RedisKeys;
  /** The shared (pipelined) client: responses and XACKs. */
  redis: IngestRedis;
  /** A dedicated client for the blocking XREADGROUP. */
  reader: IngestRedis;
  writer: StreamWriter;
  registry: DeviceRegistry<TcpSession>;
  logger: Logger;
  metrics: IngestMetrics;
  commandTimeoutMs: number;
  /** How long one XREADGROUP blocks (must stay below the client's command timeout). */
  blockMs?: number;
  now?: () => number;
}

/** Reply payload as stored: text when it is text, otherwise `hex:` + the bytes. */
export function replyText(payload: Buffer): string {
  return isTextPayload(payload) ? commandReplyText({ payload }) : `hex:${payload.toString('hex')}`;
}

/** The Codec 12 frame of a command, or why none can carry it (too long, empty). */
export function encodeCommand(command: OutboundCommand): { bytes: Buffer } | { error: string } {
  try {
    return {
      bytes: encodeCodec12Command(command.payloadHex ? Buffer.from(command.payloadHex, 'hex') : command.text),
    };
  } catch (err) {
    if (isProtocolError(err)) return { error: `cannot be encoded: ${err.message}` };
    throw err;
  }
}

export class CommandSender {
  private readonly queues = new Map<string, DeviceQueue>();
  private readonly outstanding = new Set<Promise<unknown>>();
  /** Reports Redis refused (it was away); retried in order once it answers again. */
  private readonly owed: OwedReport[] = [];
  private retrying = false;
  /** retryOwed was called while a retry ran (Redis may have come back after that run failed). */
  private retryAgain = false;
  /** Counts the clients' reconnections, so a write that fails across one is retried. */
  private reconnects = 0;
  private readonly stopping = new AbortController();
  private loop: Promise<void> | null = null;
  private readonly stream: string;
  private readonly now: () => number;

  constructor(private readonly o: CommandSenderOptions) {
    this.stream = o.keys.commandsOutbound(o.instanceId);
    this.now = o.now ?? Date.now;
    // Responses are written through the writer's client, XACKs through `redis`: each reconnects on
    // its own, so either coming back retries (a retry while the other is still away fails).
    for (const client of new Set([o.redis, o.writer.redis])) {
      client.on('ready', () => {
        this.reconnects++;
        this.retryOwed();
      });
    }
  }

  async start(): Promise<void> {
    await ensureGroup(this.o.redis, this.stream, GROUPS.outbound);
    // Entries delivered to a previous run of this instance but never acknowledged come first,
    // then new ones; each is acknowledged once its final outcome is written (see `send`).
    const reader = new StreamReader(OutboundCommandMessage, {
      redis: this.o.redis,
      reader: this.o.reader,
      stream: this.stream,
      group: GROUPS.outbound,
      consumer: this.o.instanceId,
      blockMs: this.o.blockMs ?? 1000,
      signal: this.stopping.signal,
    });
    this.loop = reader.run({
      ack: 'handler',
      retryDelayMs: () => 1000,
      handle: async ({ entries }) => {
        for (const entry of entries) this.accept(entry);
      },
      onError: (err) => this.o.logger.warn({ err }, 'reading outbound commands failed; retrying'),
    });
  }

  /** Stops reading; commands still queued are settled by the sessions' close hooks. */
  async stopReading(): Promise<void> {
    this.stopping.abort();
    this.o.reader.disconnect();
    await this.loop;
  }

  /** Resolves once every response/XACK started so far has settled. */
  async settled(): Promise<void> {
    while (this.outstanding.size > 0) await Promise.allSettled([...this.outstanding]);
  }

  // --- session hooks -----------------------------------------------------------------------

  onActive(session: TcpSession): void {
    this.pump(session.imei);
  }

  onCommandFrame(session: TcpSession, bytes: Buffer): void {
    const log = this.o.logger.child({ imei: session.imei, remote: session.remote });
    let frame: ReturnType<typeof decodeCommandFrame>;
    try {
      frame = decodeCommandFrame(bytes);
    } catch (err) {
      log.warn({ error: isProtocolError(err) ? err.message : String(err) }, 'unreadable command reply ignored');
      return;
    }
    const isReply = (frame.codec === CODEC_12 && frame.type === 0x06) || frame.codec === CODEC_13;
    const q = this.queues.get(session.imei);
    const current = q?.inFlight;
    if (!isReply || !current || current.session !== session) {
      log.info({ codec: frame.codec, type: frame.type, text: replyText(frame.payload) }, 'unsolicited device message');
      return;
    }
    this.finish(session.imei, current, 'answered', { response: replyText(frame.payload) });
  }

  onClosed(session: TcpSession, reason: string): void {
    const q = this.queues.get(session.imei);
    if (!q) return;
    if (q.inFlight && q.inFlight.session === session) {
      // Never written (the socket closed first): nothing reached the device, so re-dispatch it.
      if (q.inFlight.written)
        this.finish(session.imei, q.inFlight, 'failed', { error: `device disconnected (${reason}) before answering` });
      else this.finish(session.imei, q.inFlight, 'not_held', {});
    }
    // If the device is no longer held here, hand its waiting commands back for re-dispatch.
    if (this.o.registry.get(session.imei) === undefined || this.o.registry.get(session.imei) === session) {
      for (const item of q.waiting.splice(0)) this.report(item, 'not_held', {}, true);
      if (!q.inFlight) this.queues.delete(session.imei);
    }
  }

  // --- internals ---------------------------------------------------------------------------

  private accept(entry: ReadEntry<OutboundCommand>): void {
    const entryId = entry.id;
    if (!entry.ok) {
      // Unreadable: nobody can ever deliver it; acknowledge so it does not block the stream.
      this.o.logger.error({ err: entry.error, entryId }, 'invalid outbound command dropped');
      this.track(this.o.redis.xack(this.stream, GROUPS.outbound, entryId));
      return;
    }
    const command = entry.value;
    const item = { entryId, command };
    if (command.expiresAt <= this.now()) {
      this.report(item, 'expired', {}, true);
      return;
    }
    if (!this.o.registry.get(command.imei)) {
      this.report(item, 'not_held', {}, true);
      return;
    }
    let q = this.queues.get(command.imei);
    if (!q) {
      q = { waiting: [], inFlight: null };
      this.queues.set(command.imei, q);
    }
    q.waiting.push(item);
    this.pump(command.imei);
  }

  /** Sends the next waiting command of a device if none is in flight. */
  private pump(imei: string): void {
    const q = this.queues.get(imei);
    if (!q || q.inFlight) return;
    const session = this.o.registry.get(imei);
    while (q.waiting.length > 0) {
      const item = q.waiting.shift() as Queued;
      if (!session || session.isClosed()) {
        this.report(item, 'not_held', {}, true);
        continue;
      }
      if (item.command.expiresAt <= this.now()) {
        this.report(item, 'expired', {}, true);
        continue;
      }
      // Encoded here, outside the session's queue: a command no frame can carry ends `failed` with
      // the reason, and the device's session (and its telemetry) is never touched by it.
      const encoded = encodeCommand(item.command);
      if ('error' in encoded) {
        this.report(item, 'failed', { error: encoded.error }, true);
        continue;
      }
      const bytes = encoded.bytes;
      const flight: InFlight = { ...item, session, timer: null, written: false };
      q.inFlight = flight;
      const queued = session.enqueue(async () => {
        if (q.inFlight !== flight) return;
        if (!session.write(bytes)) {
          this.finish(imei, flight, 'not_held', {});
          return;
        }
        flight.written = true;
        flight.timer = setTimeout(
          () => this.finish(imei, flight, 'failed', { error: `no reply within ${this.o.commandTimeoutMs} ms` }),
          this.o.commandTimeoutMs,
        );
        this.report(flight, 'sent', {}, false);
      });
      if (!queued) {
        q.inFlight = null;
        this.report(item, 'not_held', {}, true);
        continue;
      }
      return;
    }
    this.queues.delete(imei);
  }

  private finish(
    imei: string,
    flight: InFlight,
    outcome: CommandOutcome,
    extra: { response?: string; error?: string },
  ) {
    const q = this.queues.get(imei);
    if (!q || q.inFlight !== flight) return;
    if (flight.timer) clearTimeout(flight.timer);
    q.inFlight = null;
    this.report(flight, outcome, extra, true);
    this.pump(imei);
  }

  /** Writes an outcome; a final one is XACKed only after Redis has the response. */
  private report(item: Queued, outcome: CommandOutcome, extra: { response?: string; error?: string }, final: boolean) {
    const { command } = item;
    this.o.metrics.commands.inc({ outcome });
    this.o.logger.info(
      { imei: command.imei, commandId: command.commandId, outcome, error: extra.error },
      `command ${outcome}`,
    );
    const fields = encodeCommandResponse({
      commandId: command.commandId,
      imei: command.imei,
      instance: this.o.instanceId,
      outcome,
      attempt: command.attempt,
      response: extra.response ?? '',
      error: extra.error ?? '',
      at: this.now(),
    });
    this.deliver({ entryId: item.entryId, commandId: command.commandId, outcome, fields, final, written: false });
  }

  /** Writes the response, then (final outcomes) XACKs; a step Redis refused is owed and retried. */
  private deliver(r: OwedReport): void {
    if (this.owed.length > 0) {
      // Older reports are still owed: queue behind them so each command's outcomes stay in order.
      this.owed.push(r);
      this.retryOwed();
      return;
    }
    const reconnects = this.reconnects;
    this.track(
      this.send(r).catch((err: unknown) => {
        this.owed.push(r);
        this.o.logger.error(
          { err, commandId: r.commandId, outcome: r.outcome },
          'could not report command outcome; retrying when Redis answers',
        );
        // A client came back while this write was failing: its 'ready' found nothing owed yet.
        if (this.reconnects !== reconnects) this.retryOwed();
      }),
    );
  }

  private async send(r: OwedReport): Promise<void> {
    if (!r.written) {
      await this.o.writer.add(this.o.keys.commandsResponses, r.fields);
      r.written = true;
    }
    if (r.final) await this.o.redis.xack(this.stream, GROUPS.outbound, r.entryId);
  }

  /** Retries owed reports in order, stopping at the first Redis still refuses (called when it is back). */
  retryOwed(): void {
    if (this.owed.length === 0) return;
    if (this.retrying) {
      this.retryAgain = true;
      return;
    }
    this.retrying = true;
    this.retryAgain = false;
    const run = (async () => {
      while (this.owed.length > 0) {
        await this.send(this.owed[0] as OwedReport);
        this.owed.shift();
      }
    })().finally(() => {
      this.retrying = false;
      // Once more if asked meanwhile: the call may have been a reconnect this run's failure predates.
      if (this.retryAgain) this.retryOwed();
    });
    this.track(run);
  }

  get owedReports(): number {
    return this.owed.length;
  }

  private track(p: Promise<unknown>): void {
    const t = p.catch(() => {});
    this.outstanding.add(t);
    t.then(() => this.outstanding.delete(t));
  }
}
