/**
 * The ingestion port against a hostile network, with real sockets, Redis and PostgreSQL: only a
 * login before login, session takeovers counted, per-device source networks, TLS, and a disabled
 * device's live session closed through `devices:control` with what it was acked still stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DeviceControl, encodeDeviceControl, SESSION_TAKEOVER_EVENT } from '../../src/contract/index.js';
import { deriveRange } from '../../src/history/main.js';
import type { Ingestion } from '../../src/ingestion/server.js';
import { type RunningProcessor, runProcess } from '../../src/processor/main.js';
import { avlAck, encodeImeiLogin } from '../../src/protocol/index.js';
import { processorConfig, silentLogger } from '../processor/support.js';
import { avlFrame, eventually, REDIS_URL, selfSignedCertificate, useIngestionStack } from './support.js';

const IMEI = '356307042441101';
const FENCED = '356307042441102';
const BAD_LIST = '356307042441103';
const TO_DISABLE = '356307042441104';
const TAKEN = '356307042441105';
const ROAMING = '356307042441106';

const stack = useIngestionStack([
  { imei: IMEI, name: 'plain', enabled: true },
  { imei: FENCED, name: 'fenced', enabled: true, allowed_networks: '10.0.0.0/8,127.0.0.2/32' },
  { imei: BAD_LIST, name: 'typo', enabled: true, allowed_networks: '127.0.0.0/8,not-a-network' },
  { imei: TO_DISABLE, name: 'to disable', enabled: true },
  { imei: TAKEN, name: 'taken over', enabled: true },
  { imei: ROAMING, name: 'roaming', enabled: true },
]);
let ing: Ingestion;
const tls = selfSignedCertificate();

async function takeoverEvents(imei: string): Promise<{ id: string; attributes: Record<string, unknown> }[]> {
  return stack.db
    .knex('events as e')
    .join('devices as d', 'd.id', 'e.device')
    .where({ 'd.imei': imei, 'e.type': SESSION_TAKEOVER_EVENT })
    .orderBy('e.time')
    .select('e.id', 'e.attributes');
}

/** The takeover events of a device once there is one (they are written after the login's answer). */
function recordedTakeovers(imei: string) {
  return eventually(async () => {
    const rows = await takeoverEvents(imei);
    return rows.length > 0 ? rows : null;
  }, `a takeover event of ${imei}`);
}

/** What the devices hook writes when an admin disables or edits a device. */
async function signalControl(imei: string, change: DeviceControl['change']): Promise<void> {
  await stack.r.redis.xadd(stack.r.keys.devicesControl, '*', ...encodeDeviceControl({ imei, change, at: Date.now() }));
}

async function counter(name: string, label: string, value: string): Promise<number> {
  const m = (await ing.registry.getSingleMetric(name)?.get())?.values ?? [];
  return m.filter((v) => v.labels[label] === value).reduce((a, v) => a + v.value, 0);
}

beforeAll(async () => {
  ing = await stack.start('hard-a', { tls: { port: 0, ...tls }, deviceCacheTtlMs: 60_000, commands: false });
});

describe('before login, only a login', () => {
  it('closes a connection whose first bytes are an AVL frame, with no answer and nothing stored', async () => {
    const d = await stack.opened.device(ing.tcpPort);
    d.send(avlFrame(2));
    await d.whenClosed;
    expect(d.available).toBe(0);
    expect(await counter('fleet_ingest_refusals_total', 'reason', 'frame_before_handshake')).toBeGreaterThanOrEqual(1);
    expect(await stack.r.redis.xlen(stack.r.keys.telemetryAvl)).toBe(0);
  });

  it('never stores what an unknown IMEI sent right behind its login', async () => {
    const d = await stack.opened.device(ing.tcpPort);
    d.send(Buffer.concat([encodeImeiLogin('356307042449999'), avlFrame(1)]));
    await d.whenClosed;
    expect((await d.read(1))[0]).toBe(0);
    expect(await stack.r.redis.xlen(stack.r.keys.telemetryAvl)).toBe(0);
  });

  it('closes an oversized length announced before login after its first two bytes', async () => {
    const d = await stack.opened.device(ing.tcpPort);
    d.send(Buffer.from('00000000ffffffff', 'hex'));
    await d.whenClosed;
    expect(d.available).toBe(0);
  });
});

describe('identity', () => {
  it('counts a login that takes over a live session from another address, not a reconnect from the same one', async () => {
    const first = await stack.opened.device(ing.tcpPort, { localAddress: '127.0.0.1' });
    expect(await first.login(IMEI)).toBe(1);
    const again = await stack.opened.device(ing.tcpPort, { localAddress: '127.0.0.1' });
    expect(await again.login(IMEI)).toBe(1);
    await first.whenClosed;
    expect(await counter('fleet_ingest_session_takeovers_total', 'holder', 'this_instance')).toBe(0);

    const intruder = await stack.opened.device(ing.tcpPort, { localAddress: '127.0.0.3' });
    expect(await intruder.login(IMEI)).toBe(1);
    await again.whenClosed;
    expect(await counter('fleet_ingest_session_takeovers_total', 'holder', 'this_instance')).toBe(1);
    intruder.close();
    // Only the takeover from another address became an event, not the reconnect.
    const rows = await recordedTakeovers(IMEI);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.attributes).toMatchObject({ old_address: '127.0.0.1', new_address: '127.0.0.3' });
  });

  it('records a takeover as an event with the old and new address, and re-deriving history keeps it', async () => {
    const owner = await stack.opened.device(ing.tcpPort, { localAddress: '127.0.0.1' });
    expect(await owner.login(TAKEN)).toBe(1);
    owner.send(avlFrame(3));
    expect((await owner.read(4)).readUInt32BE(0)).toBe(3);
    const intruder = await stack.opened.device(ing.tcpPort, { localAddress: '127.0.0.4' });
    expect(await intruder.login(TAKEN)).toBe(1);
    await owner.whenClosed;
    intruder.send(avlFrame(2));
    expect((await intruder.read(4)).readUInt32BE(0)).toBe(2);
    const [event] = await recordedTakeovers(TAKEN);
    expect(event!.attributes).toEqual({
      old_address: '127.0.0.1',
      new_address: '127.0.0.4',
      old_instance: 'hard-a',
      new_instance: 'hard-a',
    });

    // The device's positions stored, then its history derived from scratch and from a time
    // before the event: the recorded event is not derivation's to delete.
    const config = processorConfig(stack.db.connection, REDIS_URL, stack.r.prefix);
    const processor = await runProcess(config, silentLogger);
    const { id } = await stack.db.knex('devices').where({ imei: TAKEN }).first('id');
    try {
      await eventually(async () => {
        const rows = await stack.db.knex('positions').where({ device: id }).count({ n: '*' });
        return Number(rows[0]?.n) === 5;
      }, 'the 5 acknowledged records stored');
    } finally {
      await processor.stop();
    }
    for (const from of [null, Date.UTC(2020, 0, 1)]) {
      const [derived] = await deriveRange(config, { from, to: null, device: TAKEN });
      expect(derived?.changes, String(from)).toBeDefined();
      expect(await takeoverEvents(TAKEN), String(from)).toEqual([event]);
    }
  });

  it('tells a takeover on another instance from a reconnect there by the address in the registry', async () => {
    const other = await stack.opened.ingestion(stack.db.knex, {
      instanceId: 'hard-b',
      redisUrl: REDIS_URL,
      redisPrefix: stack.r.prefix,
      commands: false,
    });
    const otherCount = async () =>
      ((await other.registry.getSingleMetric('fleet_ingest_session_takeovers_total')?.get())?.values ?? []).reduce(
        (a, v) => a + v.value,
        0,
      );
    const first = await stack.opened.device(ing.tcpPort, { localAddress: '127.0.0.1' });
    expect(await first.login(ROAMING)).toBe(1);
    const reconnect = await stack.opened.device(other.tcpPort, { localAddress: '127.0.0.1' });
    expect(await reconnect.login(ROAMING)).toBe(1);
    expect(await otherCount()).toBe(0);
    const intruder = await stack.opened.device(other.tcpPort, { localAddress: '127.0.0.5' });
    expect(await intruder.login(ROAMING)).toBe(1);
    expect(await otherCount()).toBe(1);
    const rows = await recordedTakeovers(ROAMING);
    expect(rows.map((e) => e.attributes)).toEqual([
      { old_address: '127.0.0.1', new_address: '127.0.0.5', old_instance: 'hard-b', new_instance: 'hard-b' },
    ]);
    for (const d of [first, reconnect, intruder]) d.close();
  });

  it('refuses a device outside its allowed networks with 00, and accepts it from inside', async () => {
    const outside = await stack.opened.device(ing.tcpPort, { localAddress: '127.0.0.1' });
    expect(await outside.login(FENCED)).toBe(0);
    await outside.whenClosed;
    const inside = await stack.opened.device(ing.tcpPort, { localAddress: '127.0.0.2' });
    expect(await inside.login(FENCED)).toBe(1);
    inside.close();
    expect(await counter('fleet_ingest_refusals_total', 'reason', 'network_not_allowed')).toBe(1);
  });

  it('refuses everyone when the allowed networks hold an entry that is not a network (fail closed)', async () => {
    const d = await stack.opened.device(ing.tcpPort);
    expect(await d.login(BAD_LIST)).toBe(0);
  });

  it('speaks the same protocol inside TLS: login, frame, ack, stored in the stream', async () => {
    const before = await stack.r.redis.xlen(stack.r.keys.telemetryAvl);
    const d = await stack.opened.device(ing.tlsPort as number, { tls: { ca: tls.cert } });
    expect(await d.login(IMEI)).toBe(1);
    d.send(avlFrame(3));
    expect((await d.read(4)).equals(avlAck(3))).toBe(true);
    expect(await stack.r.redis.xlen(stack.r.keys.telemetryAvl)).toBe(before + 1);
    d.close();
  });
});

describe('disabling a device', () => {
  let processor: RunningProcessor | undefined;
  afterAll(async () => {
    await processor?.stop();
  });

  it('closes its live session on the instance holding it; what was acknowledged is stored', async () => {
    const d = await stack.opened.device(ing.tcpPort);
    expect(await d.login(TO_DISABLE)).toBe(1);
    const frames = [avlFrame(2), avlFrame(3)];
    for (const f of frames) {
      d.send(f);
      expect((await d.read(4)).readUInt32BE(0)).toBeGreaterThan(0);
    }
    await stack.db.knex('devices').where({ imei: TO_DISABLE }).update({ enabled: false });
    await signalControl(TO_DISABLE, 'disabled');
    await d.whenClosed;
    expect(await counter('fleet_ingest_sessions_closed_by_control_total', 'reason', 'disabled_device')).toBe(1);
    // The cached "enabled" answer was forgotten: a reconnect is refused at once.
    const back = await stack.opened.device(ing.tcpPort);
    expect(await back.login(TO_DISABLE)).toBe(0);

    processor = await runProcess(processorConfig(stack.db.connection, REDIS_URL, stack.r.prefix), silentLogger);
    const device = await stack.db.knex('devices').where({ imei: TO_DISABLE }).first('id');
    await eventually(async () => {
      const rows = await stack.db.knex('positions').where({ device: device.id }).count({ n: '*' });
      return Number(rows[0]?.n) === 5;
    }, 'the 5 acknowledged records of the disabled device are stored');
  });

  it('closes a session whose device left its allowed networks ("changed" signal re-checks)', async () => {
    const d = await stack.opened.device(ing.tcpPort, { localAddress: '127.0.0.2' });
    expect(await d.login(FENCED)).toBe(1);
    await stack.db.knex('devices').where({ imei: FENCED }).update({ allowed_networks: '10.0.0.0/8' });
    await signalControl(FENCED, 'changed');
    await d.whenClosed;
    expect(await counter('fleet_ingest_sessions_closed_by_control_total', 'reason', 'network_not_allowed')).toBe(1);
  });
});
