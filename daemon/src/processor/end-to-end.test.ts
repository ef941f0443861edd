/**
 * The real path: simulated devices → ingestion (TCP, acks after XADD) → telemetry:avl → processor →
 * positions, read back through Directus's REST API as the admin. What the simulator saw
 * acknowledged must be exactly what Directus returns, and the values must be the frames' values.
 * The map's live feed (`/fleet/positions`, asked the way the seeded dashboard's panel asks) must
 * carry the popup attributes the processor stored.
 *
 * The same test runs on one Redis and on a Redis Cluster (3 masters with a replica each, AOF
 * `appendfsync always`, telemetry split into partitions); on the cluster a master also fails over
 * while devices send, and no acknowledged record may be missing afterwards.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  startDirectus,
  startRedisCluster,
  startTestStack,
  type TestDatabase,
  type TestRedis,
  type TestRedisCluster,
  type TestStack,
} from '../../../test/support/index.js';
import { processorConfig, silentLogger, startPipelineIngestion, waitFor } from '../../test/processor/support.js';
import { DEFAULT_POPUP_ATTRIBUTES, decodeTelemetryEntry, GROUPS, type TelemetryEntry } from '../contract/index.js';
import { decodeAvlFrame } from '../protocol/index.js';
import { runFleet } from '../simulator/fleet.js';
import { registerDevices } from '../simulator/register.js';
import { runProcess } from './main.js';

/** Every processors group has read and acknowledged everything (each partition's group). */
async function caughtUp(r: TestRedis): Promise<boolean> {
  for (const t of r.keys.telemetry) {
    const groups = (await r.redis.xinfo('GROUPS', t.avl).catch(() => [])) as unknown[][];
    const g = groups.find((x) => x[1] === GROUPS.processors);
    const f = g ? Object.fromEntries([0, 2, 4, 6, 8, 10].map((i) => [String(g[i]), g[i + 1]])) : undefined;
    if (!f || Number(f.pending) !== 0 || Number(f.lag) !== 0) return false;
  }
  return true;
}

/** Every entry of every telemetry partition, decoded, with the partition it is in. */
async function storedEntries(r: TestRedis): Promise<(TelemetryEntry & { partition: number })[]> {
  const out: (TelemetryEntry & { partition: number })[] = [];
  for (const t of r.keys.telemetry) {
    for (const [, fields] of await r.redis.xrangeBuffer(t.avl, '-', '+')) {
      out.push({ ...decodeTelemetryEntry(fields), partition: t.index });
    }
  }
  return out;
}

interface ApiPosition {
  fix_time: string;
  speed: number;
  altitude: number;
  heading: number;
  satellites: number;
  location: { type: 'Point'; coordinates: [number, number] };
  device: { imei: string };
}

describe.each([
  { mode: 'one Redis', cluster: false },
  { mode: 'a Redis Cluster', cluster: true },
])('end to end on $mode', ({ cluster: onCluster }) => {
  let db: TestDatabase;
  let r: TestRedis;
  let stack: TestStack;
  let cluster: TestRedisCluster | undefined;

  beforeAll(async () => {
    cluster = onCluster ? await startRedisCluster() : undefined;
    stack = await startTestStack({ cluster });
    ({ db, redis: r } = stack);
  });
  afterAll(() => stack?.stop());

  // A Directus start and a simulated fleet: on a loaded 2-core machine this passed 60 s.
  it('every record the simulator saw acknowledged is one position in Directus, with its values', async () => {
    const seed = 4242;
    const devices = 6;
    await registerDevices(db.knex, { devices, seed });
    // On the cluster, XACKs a killed master had not yet passed on leave entries pending on its
    // successor (their rows are committed): claim such entries after 3 s rather than 30.
    const claim: Record<string, string> = onCluster ? { PROCESS_CLAIM_IDLE_MS: '3000' } : {};
    const config = processorConfig(db.connection, r.url, r.prefix, { ...r.env, ...claim });
    stack.started(await runProcess(config, silentLogger), (p) => p.stop());
    const ingestion = stack.started(await startPipelineIngestion(db.knex, r, 'e2e-ingest'), (i) => i.stop());
    const summary = await runFleet({
      host: '127.0.0.1',
      port: ingestion.tcpPort,
      devices,
      rate: 5,
      records: 4,
      duration: 2,
      seed,
      collectAcked: true,
      drainMs: 5000,
    });
    const acked = summary.acked ?? [];
    expect(acked.length).toBeGreaterThan(50);

    await waitFor('the processors group to catch up', () => caughtUp(r));
    // On the cluster the devices' frames are spread over the partitions.
    // Each device's frames are all in its own partition (so they stay in order).
    const stored = await storedEntries(r);
    for (const e of stored) expect(e.partition).toBe(r.keys.telemetryFor(e.imei).index);
    if (onCluster) expect(new Set(stored.map((e) => e.partition)).size).toBeGreaterThan(1);

    // What ingestion stored for those acks: the records with their values, keyed like the rows.
    const expected = new Map<
      string,
      { lat: number; lon: number; speed: number; altitude: number; angle: number; sats: number }
    >();
    for (const e of stored) {
      for (const rec of decodeAvlFrame(e.frame).records) {
        expected.set(`${e.imei}|${rec.timestamp}|${rec.eventIoId}`, {
          lat: rec.latitude,
          lon: rec.longitude,
          speed: rec.speed,
          altitude: rec.altitude,
          angle: rec.angle,
          sats: rec.satellites,
        });
      }
    }

    const directus = stack.started(await startDirectus({ database: db, redisPrefix: false }), (d) => d.stop());
    const res = await fetch(
      `${directus.url}/items/positions?limit=-1&fields=fix_time,speed,altitude,heading,satellites,location,event_io_id,device.imei`,
      { headers: { authorization: `Bearer ${directus.adminToken}` } },
    );
    expect(res.status).toBe(200);
    const rows = ((await res.json()) as { data: (ApiPosition & { event_io_id: number })[] }).data;

    const ackedKeys = new Set(acked.map((a) => `${a.imei}|${a.timestamp}`));
    const rowKeys = rows.map((p) => `${p.device.imei}|${Date.parse(p.fix_time)}`);
    expect(rowKeys.length).toBe(ackedKeys.size); // no duplicates, nothing missing
    expect(new Set(rowKeys)).toEqual(ackedKeys);
    expect(acked.length).toBe(ackedKeys.size);
    for (const p of rows) {
      const want = expected.get(`${p.device.imei}|${Date.parse(p.fix_time)}|${p.event_io_id}`);
      expect(want).toBeDefined();
      expect(p.location.coordinates[0]).toBeCloseTo(want!.lon, 7);
      expect(p.location.coordinates[1]).toBeCloseTo(want!.lat, 7);
      expect({ speed: p.speed, altitude: p.altitude, heading: p.heading, satellites: p.satellites }).toEqual({
        speed: want!.speed,
        altitude: want!.altitude,
        heading: want!.angle,
        satellites: want!.sats,
      });
    }

    // The map popup: what the seeded Fleet dashboard's map panel asks for is what was stored.
    const auth = { authorization: `Bearer ${directus.adminToken}` };
    const panels = (await (
      await fetch(`${directus.url}/panels?filter[type][_eq]=fleet-map&fields=options`, { headers: auth })
    ).json()) as { data: { options: { attributes?: string | null } | null }[] };
    expect(panels.data).toHaveLength(1);
    const asked = panels.data[0]!.options?.attributes;
    const feed = await fetch(`${directus.url}/fleet/positions${asked ? `?attributes=${asked}` : ''}`, {
      headers: auth,
    });
    expect(feed.status).toBe(200);
    const features = ((await feed.json()) as { features: { properties: { imei: string; attrs: object } }[] }).features;
    expect(features).toHaveLength(devices);
    const attributes = new Map(
      ((await db.knex('devices').select('imei', 'last_attributes')) as { imei: string; last_attributes: object }[]).map(
        (d) => [d.imei, d.last_attributes as Record<string, unknown>],
      ),
    );
    for (const f of features) {
      expect(Object.keys(f.properties.attrs).sort()).toEqual([...DEFAULT_POPUP_ATTRIBUTES].sort());
      const want = Object.fromEntries(DEFAULT_POPUP_ATTRIBUTES.map((k) => [k, attributes.get(f.properties.imei)?.[k]]));
      expect(f.properties.attrs).toEqual(want);
    }
  }, 180_000);

  // Ingestion waits for a replica (WAIT 1) before acknowledging, so the replica promoted when its
  // master is killed has every acknowledged frame; the processor reads on from the new master.
  if (onCluster)
    it('a master killed while devices send loses no acknowledged record', async () => {
      const seed = 9191;
      const devices = 6;
      await registerDevices(db.knex, { devices, seed, firstIndex: 100 });
      const ingestion = stack.started(
        await startPipelineIngestion(db.knex, r, 'e2e-failover', { waitReplicas: 1 }),
        (i) => i.stop(),
      );
      const fleet = runFleet({
        host: '127.0.0.1',
        port: ingestion.tcpPort,
        devices,
        firstIndex: 100,
        rate: 10,
        records: 2,
        duration: 4,
        seed,
        collectAcked: true,
        drainMs: 20_000,
      });
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const killed = (await cluster!.masters())[0]!;
      await cluster!.failover({ masterPort: killed, kill: true });
      // Back as a replica of its successor, so WAIT 1 is answered on that shard again.
      await cluster!.restart(killed);
      const acked = (await fleet).acked ?? [];
      expect(acked.length).toBeGreaterThan(100);

      await waitFor('the processors group to catch up', () => caughtUp(r), 60_000);
      const imeis = [...new Set(acked.map((a) => a.imei))];
      const rows = (await db
        .knex('positions as p')
        .join('devices as d', 'd.id', 'p.device')
        .whereIn('d.imei', imeis)
        .select('d.imei', 'p.fix_time')) as { imei: string; fix_time: Date }[];
      const stored = new Set(rows.map((p) => `${p.imei}|${new Date(p.fix_time).getTime()}`));
      const missing = acked.filter((a) => !stored.has(`${a.imei}|${a.timestamp}`));
      expect({ acked: acked.length, missing: missing.length }).toEqual({ acked: acked.length, missing: 0 });
    });
});
