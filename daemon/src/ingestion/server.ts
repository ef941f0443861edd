/**
 * The ingestion server, startable in-process (tests, benchmarks) with explicit dependencies:
 * TCP + UDP listeners, the batched stream writer, the device registry and heartbeat, the outbound
 * command sender and the metrics endpoint.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { once } from 'node:events';
import { type AddressInfo, createServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { type Logger, pino } from 'pino';
import type { Registry } from 'prom-client';
import {
  COMMAND_REPLY_TIMEOUT_MS,
  DEFAULT_DEVICE_PORT,
  DEVICE_CACHE_TTL_MS,
  INGESTION_LIMITS,
  type KeyLayout,
  type RedisKeys,
  type RedisTarget,
  redisKeys,
} from '../contract/index.js';
import { combineProbes, redisProbe } from '../observability/health.js';
import { createMetricsRegistry, type ObservabilityServer, startObservabilityServer } from '../observability/metrics.js';
import { CommandSender } from './commands.js';
import { startDeviceControl } from './device-control.js';
import { cachedDeviceLookup, type DeviceLookup, networkAllows, parseAllowedNetworks } from './devices.js';
import { ConnectionLimiter } from './limits.js';
import { loopUtilization, MemoryReleaser, reducingGc } from './memory.js';
import { createIngestMetrics, type IngestMetrics } from './metrics.js';
import { type ProxySource, readProxyHeader } from './proxy-header.js';
import { connectIngestRedis, createIngestRedis } from './redis.js';
import { DeviceRegistry, reapOwnEntries, startHeartbeat } from './registry.js';
import { type SessionLimits, TcpSession } from './session.js';
import { StreamWriter } from './stream-writer.js';
import type { TakeoverRecorder } from './takeover.js';
import { UdpIngest } from './udp.js';

export interface IngestionLimits extends SessionLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
  maxUdpInFlight: number;
}

export interface IngestionOptions {
  instanceId: string;
  redisUrl: string;
  /** A Redis Cluster (or one Redis) instead of `redisUrl` (see contract/redis.ts). */
  redisTarget?: RedisTarget;
  /** Key prefix for every contract key ('' in production). */
  redisPrefix?: string;
  /** Telemetry partitions and cluster hash tags (contract/keys.ts); default: one stream, plain names. */
  keyLayout?: KeyLayout;
  /**
   * Replicas that must have a frame before it is acknowledged (Redis WAIT; default 0). In a
   * cluster with replicas, 1 keeps acknowledged frames through a master's failover.
   */
  waitReplicas?: number;
  /** Asked on every handshake / datagram; wrapped in a cache of `deviceCacheTtlMs`. */
  lookup: DeviceLookup;
  deviceCacheTtlMs?: number;
  host?: string;
  /** 0 picks a free port. */
  tcpPort?: number;
  /** 0 picks a free port; null (default) disables UDP. */
  udpPort?: number | null;
  /** A TLS listener (same protocol inside); null/absent: none. Port 0 picks a free one. */
  tls?: { port: number; cert: string | Buffer; key: string | Buffer } | null;
  /** Port for /metrics and /healthz; null (default) serves none. */
  metricsPort?: number | null;
  /** Address /metrics and /healthz listen on (default 127.0.0.1). */
  metricsHost?: string;
  limits?: Partial<IngestionLimits>;
  logger?: Logger;
  /** Metrics registry (a fresh one by default). */
  registry?: Registry;
  heartbeat?: { ttlSeconds?: number; refreshMs?: number };
  /** A Redis command unanswered this long fails (and its frame is not acknowledged). */
  redisCommandTimeoutMs?: number;
  commandTimeoutMs?: number;
  /** Graceful stop gives up waiting (and closes everything) after this long. */
  shutdownTimeoutMs?: number;
  /** Set false to run without reading `commands:outbound:{instance_id}`. */
  commands?: boolean;
  /** Records logins that took over a live connection from another address (`knexTakeoverRecorder`). */
  recordTakeover?: TakeoverRecorder;
  /**
   * After the open sessions fell to half their peak, by at least `minDrop`, run one
   * memory-reducing collection `settleMs` later, or once logins and frames have calmed (see
   * memory.ts). Default 1 000 sessions, 2 s; null: never.
   */
  memoryRelease?: { minDrop: number; settleMs: number } | null;
  /**
   * Load balancers (CIDR list, as `allowed_networks`) whose TCP connections start with a PROXY
   * protocol header (v1 or v2) naming the device's address; empty: none (every peer is a device).
   */
  proxyFrom?: string | null;
}

/**
 * Reads a PROXY protocol header off a fresh socket: the device's address and the bytes behind the
 * header, or a refusal (garbage, a broken header, or nothing complete within `timeoutMs`).
 */
function awaitProxyHeader(
  socket: Socket,
  timeoutMs: number,
): Promise<{ kind: 'header'; source: ProxySource; rest: Buffer } | { kind: 'refused'; reason: string }> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const finish = (r: Parameters<typeof resolve>[0]) => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.pause();
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const r = readProxyHeader(buf);
      if (r.kind === 'invalid') finish({ kind: 'refused', reason: r.reason });
      else if (r.kind === 'header') finish({ kind: 'header', source: r.source, rest: buf.subarray(r.length) });
    };
    const onClose = () => finish({ kind: 'refused', reason: 'closed before its PROXY header' });
    const timer = setTimeout(() => finish({ kind: 'refused', reason: 'no PROXY header in time' }), timeoutMs);
    socket.on('data', onData);
    socket.once('close', onClose);
    // A reset before the header is answered by the 'close' that follows; the session that may
    // follow installs its own handler.
    socket.on('error', () => {});
  });
}

export interface Ingestion {
  readonly instanceId: string;
  readonly tcpPort: number;
  readonly udpPort: number | null;
  readonly tlsPort: number | null;
  readonly metricsPort: number | null;
  readonly registry: Registry;
  readonly metrics: IngestMetrics;
  readonly keys: RedisKeys;
  /** Open sessions (any state). */
  readonly sessions: ReadonlySet<TcpSession>;
  stop(reason?: string): Promise<void>;
}

export async function startIngestion(options: IngestionOptions): Promise<Ingestion> {
  const instanceId = options.instanceId;
  const limits: IngestionLimits = { ...INGESTION_LIMITS, ...options.limits };
  const keys = redisKeys(options.redisPrefix ?? '', options.keyLayout);
  const target = options.redisTarget ?? options.redisUrl;
  const base = options.logger ?? pino({ level: 'silent' });
  const logger = 'instance_id' in base.bindings() ? base : base.child({ instance_id: instanceId });
  const registry = options.registry ?? createMetricsRegistry({ defaultLabels: { role: 'ingest' } });
  const metrics = createIngestMetrics(registry);
  const lookup = cachedDeviceLookup(options.lookup, options.deviceCacheTtlMs ?? DEVICE_CACHE_TTL_MS);

  const commandTimeout = options.redisCommandTimeoutMs ?? 5000;
  const redis = createIngestRedis(target, { commandTimeoutMs: commandTimeout, connectionName: instanceId });
  const reader = createIngestRedis(target, {
    commandTimeoutMs: commandTimeout + 2000,
    connectionName: `${instanceId}:commands`,
  });
  // The XADDs of every frame: its own connection (registry scripts never queue ahead of a frame)
  // and one timeout per pipeline instead of one timer per command.
  const streamRedis = createIngestRedis(target, {
    commandTimeoutMs: null,
    connectionName: `${instanceId}:stream`,
  });
  const controlRedis = createIngestRedis(target, {
    commandTimeoutMs: commandTimeout + 2000,
    connectionName: `${instanceId}:control`,
  });
  const cleanups: (() => unknown)[] = [
    () => redis.disconnect(),
    () => reader.disconnect(),
    () => streamRedis.disconnect(),
    () => controlRedis.disconnect(),
  ];
  const fail = async (err: unknown): Promise<never> => {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
    throw err;
  };

  let tcp: Server;
  let tlsServer: TlsServer | null = null;
  let udp: UdpSocket | null = null;
  let udpIngest: UdpIngest | null = null;
  let obs: ObservabilityServer | null = null;
  let heartbeat: Awaited<ReturnType<typeof startHeartbeat>>;
  const sessions = new Set<TcpSession>();
  const releaseOptions =
    options.memoryRelease === undefined ? { minDrop: 1000, settleMs: 2000 } : options.memoryRelease;
  const gc = releaseOptions ? reducingGc() : null;
  const memory =
    releaseOptions && gc
      ? new MemoryReleaser({
          ...releaseOptions,
          open: () => sessions.size,
          release: gc,
          utilization: loopUtilization(),
          onReleased: (r) =>
            logger.info(
              { peakSessions: r.peak, openSessions: r.open, pauseMs: Math.round(r.ms) },
              'sessions fell to half their peak: memory-reducing collection',
            ),
        })
      : null;
  const writer = new StreamWriter(streamRedis, {
    timeoutMs: commandTimeout,
    waitReplicas: options.waitReplicas,
    onBatch: (n, s) => {
      metrics.xaddLatency.observe(s);
      metrics.xaddBatchSize.observe(n);
    },
  });
  const devices = new DeviceRegistry<TcpSession>(redis, keys, instanceId, 'tcp');
  const commands = new CommandSender({
    instanceId,
    keys,
    redis,
    reader,
    writer,
    registry: devices,
    logger,
    metrics,
    commandTimeoutMs: options.commandTimeoutMs ?? COMMAND_REPLY_TIMEOUT_MS,
    blockMs: Math.min(1000, Math.max(100, commandTimeout - 500)),
  });
  const useCommands = options.commands !== false;

  try {
    await connectIngestRedis(redis);
    await connectIngestRedis(streamRedis);
    const reaped = await reapOwnEntries(redis, keys, instanceId);
    if (reaped > 0) logger.warn({ reaped }, 'cleared registry entries left by a previous run of this instance');
    heartbeat = await startHeartbeat(redis, keys, instanceId, {
      ...options.heartbeat,
      onError: (err) => logger.error({ err }, 'heartbeat refresh failed'),
      onBeat: () => {
        if (devices.owedReleases > 0) void devices.retryReleases();
        commands.retryOwed();
      },
    });
    cleanups.push(() => heartbeat.stop(true));
    await connectIngestRedis(controlRedis);
    const control = startDeviceControl({
      redis: controlRedis,
      keys,
      lookup,
      devices,
      logger,
      metrics,
      blockMs: Math.min(1000, Math.max(100, commandTimeout - 500)),
    });
    cleanups.push(() => control.stop());
    if (useCommands) {
      await connectIngestRedis(reader);
      await commands.start();
      cleanups.push(() => commands.stopReading());
    }

    const limiter = new ConnectionLimiter(limits.maxConnections, limits.maxConnectionsPerIp);
    let stopping = false;
    const sessionDeps = {
      recordTakeover: options.recordTakeover,
      instanceId,
      keys,
      logger,
      metrics,
      lookup,
      registry: devices,
      writer,
      limits,
      hooks: useCommands
        ? {
            onActive: (s: TcpSession) => commands.onActive(s),
            onCommandFrame: (s: TcpSession, b: Buffer) => commands.onCommandFrame(s, b),
            onClosed: (s: TcpSession, r: string) => commands.onClosed(s, r),
          }
        : {},
    };
    /** Connection admission (limits), counted from the raw TCP accept, also for TLS. */
    const admit = (socket: Socket, transport: 'tcp' | 'tls', address = socket.remoteAddress ?? 'unknown'): boolean => {
      if (stopping) {
        socket.destroy();
        return false;
      }
      const refusal = limiter.tryAcquire(address);
      if (refusal) {
        metrics.refusals.inc({ reason: refusal, transport });
        logger.warn({ remote: `${address}:${socket.remotePort}`, reason: refusal, transport }, 'connection refused');
        socket.destroy();
        return false;
      }
      metrics.openConnections.inc();
      socket.once('close', () => {
        limiter.release(address);
        metrics.openConnections.dec();
      });
      return true;
    };
    const startSession = (socket: Socket, peer?: { address: string; port: number }, initial?: Buffer): void => {
      const session = new TcpSession(socket, sessionDeps, peer, initial);
      sessions.add(session);
      memory?.track();
      socket.once('close', () => {
        sessions.delete(session);
        memory?.track();
      });
    };
    const proxies = options.proxyFrom ? parseAllowedNetworks(options.proxyFrom) : null;
    tcp = createServer({ pauseOnConnect: false, noDelay: true }, (socket) => {
      if (proxies && networkAllows(proxies, socket.remoteAddress ?? '')) {
        // A trusted balancer: the device's address comes first, in its PROXY protocol header.
        awaitProxyHeader(socket, limits.handshakeTimeoutMs).then((got) => {
          if (got.kind === 'refused') {
            metrics.refusals.inc({ reason: 'bad_proxy_header', transport: 'tcp' });
            logger.warn(
              { remote: `${socket.remoteAddress}:${socket.remotePort}`, why: got.reason },
              'connection refused',
            );
            socket.destroy();
            return;
          }
          const peer = got.source ?? undefined;
          if (!admit(socket, 'tcp', peer?.address)) return;
          startSession(socket, peer, got.rest);
          socket.resume();
        });
        return;
      }
      if (admit(socket, 'tcp')) startSession(socket);
    });
    tcp.on('error', (err) => logger.error({ err }, 'TCP server error'));
    tcp.listen(options.tcpPort ?? DEFAULT_DEVICE_PORT, options.host ?? '0.0.0.0');
    await once(tcp, 'listening');
    cleanups.push(() => new Promise((r) => tcp.close(r)));

    if (options.tls) {
      const t = createTlsServer(
        {
          cert: options.tls.cert,
          key: options.tls.key,
          minVersion: 'TLSv1.2',
          handshakeTimeout: limits.handshakeTimeoutMs,
        },
        (socket) => {
          if (stopping) socket.destroy();
          else startSession(socket);
        },
      );
      // The raw accept (before the TLS handshake) takes the slot, so slow handshakes count too.
      t.on('connection', (raw: Socket) => {
        admit(raw, 'tls');
      });
      t.on('tlsClientError', (err, socket) => {
        metrics.refusals.inc({ reason: 'tls_handshake_failed', transport: 'tls' });
        logger.warn(
          { remote: `${socket.remoteAddress}:${socket.remotePort}`, error: err.message },
          'TLS handshake failed',
        );
      });
      t.on('error', (err) => logger.error({ err }, 'TLS server error'));
      t.listen(options.tls.port, options.host ?? '0.0.0.0');
      await once(t, 'listening');
      tlsServer = t;
      cleanups.push(() => new Promise((r) => t.close(r)));
    }

    if (options.udpPort != null) {
      udp = createSocket({ type: 'udp4', reuseAddr: false });
      udp.on('error', (err) => logger.error({ err }, 'UDP socket error'));
      udpIngest = new UdpIngest(udp, {
        instanceId,
        keys,
        logger,
        metrics,
        lookup,
        writer,
        maxFrameBytes: limits.maxFrameBytes,
        maxInFlight: limits.maxUdpInFlight,
      });
      udp.bind(options.udpPort, options.host ?? '0.0.0.0');
      await once(udp, 'listening');
      const u = udp;
      cleanups.push(() => new Promise<void>((r) => u.close(() => r())));
    }

    if (options.metricsPort != null) {
      obs = await startObservabilityServer({
        port: options.metricsPort,
        host: options.metricsHost ?? '127.0.0.1',
        registry,
        health: combineProbes({ redis: redisProbe(redis), redisStream: redisProbe(streamRedis) }),
      });
    }

    const tcpPort = (tcp.address() as AddressInfo).port;
    const udpPort = udp ? udp.address().port : null;
    const tlsPort = tlsServer ? (tlsServer.address() as AddressInfo).port : null;
    logger.info({ tcpPort, tlsPort, udpPort, metricsPort: obs?.port ?? null }, 'ingestion listening');

    let stopped: Promise<void> | null = null;
    const stop = (reason = 'stop'): Promise<void> => {
      if (stopped) return stopped;
      stopping = true;
      stopped = gracefulStop(reason);
      return stopped;
    };

    const gracefulStop = async (reason: string): Promise<void> => {
      logger.info({ reason, sessions: sessions.size }, 'ingestion stopping');
      memory?.stop();
      const closeTcp = Promise.all([
        new Promise<void>((r) => tcp.close(() => r())),
        new Promise<void>((r) => (tlsServer ? tlsServer.close(() => r()) : r())),
      ]);
      const orderly = (async () => {
        if (useCommands) await commands.stopReading();
        await control.stop();
        await udpIngest?.drain();
        // Each session finishes the frame it is writing (and acks it), then closes and deregisters.
        await Promise.all([...sessions].map((s) => s.shutdown()));
        await devices.settled();
        if (useCommands) await commands.settled();
        await writer.drained();
        await heartbeat.stop(true);
      })();
      const bound = options.shutdownTimeoutMs ?? 10_000;
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        orderly.then(() => false),
        new Promise<boolean>((r) => {
          timer = setTimeout(() => r(true), bound);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        logger.error({ boundMs: bound }, 'graceful stop timed out; closing what is left');
        for (const s of sessions) s.close('shutdown');
      }
      await closeTcp;
      if (udp) await new Promise<void>((r) => udp?.close(() => r()));
      await obs?.close();
      reader.disconnect();
      await redis.quit().catch(() => redis.disconnect());
      await streamRedis.quit().catch(() => streamRedis.disconnect());
      logger.info({ reason }, 'ingestion stopped');
    };

    return {
      instanceId,
      tcpPort,
      udpPort,
      tlsPort,
      metricsPort: obs?.port ?? null,
      registry,
      metrics,
      keys,
      sessions,
      stop,
    };
  } catch (err) {
    await obs?.close();
    return fail(err);
  }
}
