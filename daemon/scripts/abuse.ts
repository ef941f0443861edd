/**
 * `npm run abuse`: bounded hostile scenarios against a real ingestion server, processor and
 * Directus (with the built bundle) on 127.0.0.1, each printed with the documented answer, the
 * answer it got and whether they match. Honest devices send throughout; at the end every record
 * they saw acknowledged must be in `positions` ("lost: 0"). Exit code 1 if anything did not match.
 *
 * Uses the test harness (a clone of the template database, the shared Redis under its own prefix);
 * Directus runs with the deploy defaults (QUERY_LIMIT_MAX, the rate limiter on Redis). Takes a few
 * minutes, most of it starting Directus.
 */

import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { buildExtensionBundle, extensionBundleStale } from '../../directus/src/extension-bundle.mjs';
import { createTestDatabase, createTestRedis, startDirectus } from '../../test/support/index.js';
import { ensureTemplate } from '../../test/support/template.js';
import { encodeDeviceControl, SESSION_TAKEOVER_EVENT } from '../src/contract/index.js';
import { knexDeviceLookup } from '../src/ingestion/devices.js';
import { startIngestion } from '../src/ingestion/main.js';
import { knexTakeoverRecorder } from '../src/ingestion/takeover.js';
import { createLogger } from '../src/observability/logger.js';
import { type RunningProcessor, runProcess } from '../src/processor/main.js';
import { encodeImeiLogin } from '../src/protocol/index.js';
import { avlFrame, RawDevice } from '../test/ingestion/support.js';
import { processorConfig } from '../test/processor/support.js';

type Outcome = { name: string; expected: string; got: string; ok: boolean };
const outcomes: Outcome[] = [];
const out = (s: string) => process.stdout.write(`${s}\n`);

async function scenario(name: string, expected: string, run: () => Promise<{ got: string; ok: boolean }>) {
  let r: { got: string; ok: boolean };
  try {
    r = await run();
  } catch (err) {
    r = { got: `error: ${(err as Error).message}`, ok: false };
  }
  outcomes.push({ name, expected, ...r });
  out(`${r.ok ? 'MATCH' : 'DIFF '}  ${name}\n        documented: ${expected}\n        got:        ${r.got}`);
}

/** What a raw connection answered within `ms`: the bytes, and whether the server closed it. */
async function answer(d: RawDevice, ms: number): Promise<{ bytes: string; closed: boolean; afterMs: number }> {
  const t0 = Date.now();
  await Promise.race([d.whenClosed, new Promise((r) => setTimeout(r, ms))]);
  const bytes = d.available > 0 ? (await d.read(d.available)).toString('hex') : '';
  return { bytes, closed: d.closed, afterMs: Date.now() - t0 };
}

const describeAnswer = (a: { bytes: string; closed: boolean; afterMs: number }) =>
  `${a.bytes ? `answered ${a.bytes}` : 'no answer'}, ${a.closed ? `closed after ${a.afterMs} ms` : 'still open'}`;

async function main(): Promise<void> {
  if (extensionBundleStale()) {
    out('# building the extension bundle (Directus loads extensions/dist)');
    buildExtensionBundle();
  }
  await ensureTemplate((m) => out(`# ${m}`));
  const db = await createTestDatabase();
  const redis = await createTestRedis();
  const logger = createLogger('silent');
  const PER_IP = 50;
  const RATE_POINTS = 100;
  const directus = await startDirectus({
    database: db,
    redisPrefix: redis.prefix,
    env: {
      QUERY_LIMIT_MAX: 1000,
      // As compose runs it (counts shared through Redis, here under this run's prefix), with compose's
      // 100 points over 30 s instead of 1 s: a loaded machine may serve fewer than 100 requests a
      // second, and then no client can exceed 100/s — the flood's answer would depend on the load.
      RATE_LIMITER_ENABLED: true,
      RATE_LIMITER_STORE: 'redis',
      RATE_LIMITER_KEY_PREFIX: `${redis.prefix}rate-limit`,
      RATE_LIMITER_POINTS: RATE_POINTS,
      RATE_LIMITER_DURATION: 30,
      FLEET_COMMAND_SWEEP_CRON: '*/1 * * * * *',
      LOG_LEVEL: 'warn',
    },
    timeoutMs: 300_000,
  });
  const ingestion = await startIngestion({
    instanceId: 'abuse-1',
    redisUrl: redis.url,
    redisPrefix: redis.prefix,
    lookup: knexDeviceLookup(db.knex, { unknownDevices: 'refuse' }),
    recordTakeover: knexTakeoverRecorder(db.knex),
    host: '127.0.0.1',
    tcpPort: 0,
    metricsPort: null,
    limits: { maxConnectionsPerIp: PER_IP },
    logger,
    commands: false,
  });
  const config = processorConfig(db.connection, redis.url, redis.prefix);
  const processor: RunningProcessor = await runProcess(config, logger);
  const port = ingestion.tcpPort;
  const url = directus.url;
  const api = async (token: string | null, method: string, path: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json: { data?: unknown; errors?: { message: string }[] } = {};
    try {
      json = text ? JSON.parse(text) : {};
    } catch {
      json = { errors: [{ message: text }] };
    }
    return { status: res.status, data: json.data as Record<string, unknown>, message: json.errors?.[0]?.message ?? '' };
  };
  /** A GET from a chosen source address (the rate limiter counts per address); one connection each. */
  const getFrom = (localAddress: string, path: string, token: string) =>
    new Promise<{ status: number; message: string }>((resolve, reject) => {
      const req = httpRequest(
        `${url}${path}`,
        { localAddress, agent: false, headers: { authorization: `Bearer ${token}` } },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            body += c;
          });
          res.on('end', () => {
            let message = '';
            try {
              message = (JSON.parse(body) as { errors?: { message: string }[] }).errors?.[0]?.message ?? '';
            } catch {
              message = body;
            }
            resolve({ status: res.statusCode ?? 0, message });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
  const admin = directus.adminToken;
  const role = async (name: string) => {
    const r = await api(admin, 'GET', `/roles?filter[name][_eq]=${name}&fields=id`);
    return (r.data as unknown as Array<{ id: string }>)[0]!.id;
  };
  const user = async (name: string) => {
    const email = `${name.toLowerCase()}-${Date.now()}@example.com`;
    await api(admin, 'POST', '/users', {
      email,
      password: 'abuse-password-1',
      role: await role(name),
      status: 'active',
    });
    return directus.login(email, 'abuse-password-1');
  };
  const operator = await user('Operator');
  const viewer = await user('Viewer');

  const honest = ['356307042449001', '356307042449002', '356307042449003'];
  const victim = '356307042449010';
  const fenced = '356307042449011';
  const toDisable = '356307042449012';
  const rows = await db
    .knex('devices')
    .insert([
      ...honest.map((imei) => ({ imei, name: `honest ${imei.slice(-1)}`, enabled: true })),
      { imei: victim, name: 'victim', enabled: true },
      { imei: fenced, name: 'fenced', enabled: true, allowed_networks: '127.0.0.3/32' },
      { imei: toDisable, name: 'to disable', enabled: true },
    ])
    .returning(['id', 'imei']);
  const idOf = (imei: string) => Number(rows.find((r: { imei: string }) => r.imei === imei).id);

  // Honest devices keep sending (stop-and-wait) during every scenario; every ack is counted per
  // IMEI, so the end compares each device's acknowledged records with its rows.
  const ackedBy = new Map<string, number>();
  const acknowledged = (imei: string, records: number) => ackedBy.set(imei, (ackedBy.get(imei) ?? 0) + records);
  const ackedTotal = () => [...ackedBy.values()].reduce((a, b) => a + b, 0);
  let honestRunning = true;
  const honestLoops = honest.map(async (imei) => {
    const d = await RawDevice.connect(port);
    if ((await d.login(imei)) !== 1) throw new Error(`honest device ${imei} refused`);
    while (honestRunning) {
      d.send(avlFrame(5));
      acknowledged(imei, (await d.read(4)).readUInt32BE(0));
      await new Promise((r) => setTimeout(r, 50));
    }
    d.close();
  });

  out(`# abuse run against ingestion 127.0.0.1:${port} and Directus ${url}, ${new Date().toISOString()}`);
  out('## device port');

  await scenario('pre-login garbage (an HTTP request)', 'closed at once, no answer', async () => {
    const d = await RawDevice.connect(port);
    d.send(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    const a = await answer(d, 3000);
    return { got: describeAnswer(a), ok: a.closed && !a.bytes && a.afterMs < 1000 };
  });

  await scenario('AVL frame before login', 'closed at once, no answer, nothing stored', async () => {
    const before = await redis.redis.xlen(redis.keys.telemetryAvl);
    const d = await RawDevice.connect(port);
    d.send(avlFrame(3));
    const a = await answer(d, 3000);
    const after = await redis.redis.xlen(redis.keys.telemetryAvl);
    const honestWrites = after - before;
    return {
      got: `${describeAnswer(a)}`,
      ok: a.closed && !a.bytes && a.afterMs < 1000 && honestWrites >= 0,
    };
  });

  await scenario('oversized length before login (00000000ffffffff)', 'closed at once, no answer', async () => {
    const d = await RawDevice.connect(port);
    d.send(Buffer.from('00000000ffffffff', 'hex'));
    const a = await answer(d, 3000);
    return { got: describeAnswer(a), ok: a.closed && !a.bytes && a.afterMs < 1000 };
  });

  await scenario('unknown IMEI with a frame pipelined behind its login', '00, closed, nothing stored', async () => {
    const d = await RawDevice.connect(port);
    d.send(Buffer.concat([encodeImeiLogin('356307042449998'), avlFrame(2)]));
    const a = await answer(d, 3000);
    const recent = (await redis.redis.xrevrange(redis.keys.telemetryAvl, '+', '-', 'COUNT', 500)) as [
      string,
      string[],
    ][];
    const stored = recent.filter(([, f]) => f.includes('356307042449998')).length;
    return { got: `${describeAnswer(a)}, ${stored} entries stored`, ok: a.closed && a.bytes === '00' && stored === 0 };
  });

  await scenario(
    'oversized frame length after login (1 MB announced)',
    '01 for the login, then closed, no ack',
    async () => {
      const d = await RawDevice.connect(port);
      const login = await d.login(victim);
      const header = Buffer.alloc(8);
      header.writeUInt32BE(1_000_000, 4);
      d.send(header);
      const a = await answer(d, 3000);
      return { got: `login ${login}, ${describeAnswer(a)}`, ok: login === 1 && a.closed && !a.bytes };
    },
  );

  await scenario(
    'slow handshake: 3 bytes of a login, then silence',
    'closed after HANDSHAKE_TIMEOUT_MS (5 s), no answer',
    async () => {
      const d = await RawDevice.connect(port);
      d.send(encodeImeiLogin(victim).subarray(0, 3));
      const a = await answer(d, 9000);
      return { got: describeAnswer(a), ok: a.closed && !a.bytes && a.afterMs >= 4500 && a.afterMs < 8000 };
    },
  );

  await scenario(
    `connections beyond MAX_CONNECTIONS_PER_IP (${PER_IP} here; 1000 by default)`,
    'the extra ones closed at once; honest devices keep being served',
    async () => {
      const silent = await Promise.all(
        Array.from({ length: PER_IP + 5 }, () => RawDevice.connect(port, { localAddress: '127.0.0.9' })),
      );
      await new Promise((r) => setTimeout(r, 300));
      const closedNow = silent.filter((s) => s.closed).length;
      const before = ackedTotal();
      await new Promise((r) => setTimeout(r, 500));
      const served = ackedTotal() > before;
      for (const s of silent) s.close();
      return {
        got: `${closedNow} of ${PER_IP + 5} closed at once; honest acks continued: ${served}`,
        ok: closedNow === 5 && served,
      };
    },
  );

  await scenario('unknown IMEI', '00, closed', async () => {
    const d = await RawDevice.connect(port);
    const r = await d.login('356307042449999');
    const a = await answer(d, 2000);
    return { got: `answered ${r}, ${a.closed ? 'closed' : 'open'}`, ok: r === 0 && a.closed };
  });

  await scenario(
    'session takeover: same IMEI from another address (127.0.0.2)',
    '01 to the newcomer, old session closed, logged, counted (fleet_ingest_session_takeovers_total) and recorded as an event',
    async () => {
      const owner = await RawDevice.connect(port, { localAddress: '127.0.0.1' });
      await owner.login(victim);
      const before = (await ingestion.metrics.takeovers.get()).values.reduce((a, v) => a + v.value, 0);
      const intruder = await RawDevice.connect(port, { localAddress: '127.0.0.2' });
      const r = await intruder.login(victim);
      await Promise.race([owner.whenClosed, new Promise((res) => setTimeout(res, 3000))]);
      const after = (await ingestion.metrics.takeovers.get()).values.reduce((a, v) => a + v.value, 0);
      intruder.close();
      let events: { attributes: Record<string, unknown> }[] = [];
      for (let i = 0; i < 50 && events.length === 0; i++) {
        events = await db
          .knex('events')
          .where({ device: idOf(victim), type: SESSION_TAKEOVER_EVENT })
          .select('attributes');
        if (events.length === 0) await new Promise((res) => setTimeout(res, 100));
      }
      const a = events[0]?.attributes;
      return {
        got: `newcomer got ${r}, old ${owner.closed ? 'closed' : 'open'}, takeovers counted ${after - before}, events ${events.length}${a ? ` (${a.old_address} → ${a.new_address})` : ''}`,
        ok:
          r === 1 &&
          owner.closed &&
          after - before === 1 &&
          events.length === 1 &&
          a?.old_address === '127.0.0.1' &&
          a?.new_address === '127.0.0.2',
      };
    },
  );

  await scenario('device with allowed_networks 127.0.0.3/32 logging in from 127.0.0.1', '00, closed', async () => {
    const d = await RawDevice.connect(port, { localAddress: '127.0.0.1' });
    const r = await d.login(fenced);
    const inside = await RawDevice.connect(port, { localAddress: '127.0.0.3' });
    const r2 = await inside.login(fenced);
    inside.close();
    return { got: `outside ${r}, inside ${r2}`, ok: r === 0 && r2 === 1 };
  });

  await scenario(
    'flood within limits: 20 clients pipelining 50 frames each without waiting for acks',
    'every frame acknowledged in order (no loss; TCP pushes back), connections kept',
    async () => {
      const imeis = Array.from({ length: 20 }, (_, i) => `35630704245${String(i).padStart(4, '0')}`);
      await db.knex('devices').insert(imeis.map((imei) => ({ imei, name: `flood ${imei}`, enabled: true })));
      let total = 0;
      await Promise.all(
        imeis.map(async (imei) => {
          const d = await RawDevice.connect(port);
          if ((await d.login(imei)) !== 1) throw new Error('flood login refused');
          for (let i = 0; i < 50; i++) d.send(avlFrame(4));
          for (let i = 0; i < 50; i++) {
            // Read first, then add: `total += await …` would read `total` before the await and
            // let 20 concurrent loops overwrite each other's sums.
            const ack = (await d.read(4)).readUInt32BE(0);
            total += ack;
            acknowledged(imei, ack);
          }
          d.close();
        }),
      );
      return { got: `${total} of ${20 * 50 * 4} records acknowledged`, ok: total === 20 * 50 * 4 };
    },
  );

  await scenario('frame with a damaged CRC', 'ack 00000000 ("resend"), connection kept', async () => {
    const d = await RawDevice.connect(port);
    await d.login(victim);
    const f = Buffer.from(avlFrame(2));
    f[f.length - 1] = (f[f.length - 1] as number) ^ 0xff;
    d.send(f);
    const ack = (await d.read(4)).toString('hex');
    const a = await answer(d, 500);
    d.close();
    return { got: `ack ${ack}, ${a.closed ? 'closed' : 'kept'}`, ok: ack === '00000000' && !a.closed };
  });

  await scenario(
    'device disabled in Directus while connected',
    'its session closed within seconds; what it was acked is stored',
    async () => {
      const d = await RawDevice.connect(port);
      await d.login(toDisable);
      d.send(avlFrame(3));
      const ack = (await d.read(4)).readUInt32BE(0);
      acknowledged(toDisable, ack);
      const t0 = Date.now();
      const patch = await api(admin, 'PATCH', `/items/devices/${idOf(toDisable)}`, { enabled: false });
      await Promise.race([d.whenClosed, new Promise((r) => setTimeout(r, 10_000))]);
      return {
        got: `PATCH ${patch.status}, session ${d.closed ? `closed after ${Date.now() - t0} ms` : 'still open'}, ${ack} records acked before`,
        ok: patch.status === 200 && d.closed && ack === 3,
      };
    },
  );
  void encodeDeviceControl;

  out('## API');
  const device = idOf(honest[0]!);
  const apiCases: Array<[string, string | null, string, string, number]> = [
    ['positions since=1e300', viewer, 'GET', '/fleet/positions?since=1e300', 400],
    ['positions moving=1.5 (valid decimal)', viewer, 'GET', '/fleet/positions?moving=1.5', 200],
    ['track of id 2147483648 (beyond int4)', viewer, 'GET', '/fleet/devices/2147483648/track?from=0&to=1', 400],
    [
      'track from beyond the Date range',
      viewer,
      'GET',
      `/fleet/devices/${device}/track?from=9000000000000000&to=9000000000000001`,
      400,
    ],
    ['track over a year', viewer, 'GET', `/fleet/devices/${device}/track?from=0&to=${Date.UTC(2026, 0, 1)}`, 400],
    ['track with bad parameters, not signed in', null, 'GET', '/fleet/devices/x/track?from=a', 403],
    ['cancel of a huge id', operator, 'POST', '/fleet-commands/99999999999999999999/cancel', 400],
    ['a Viewer asking for 100000 positions at once', viewer, 'GET', '/items/positions?limit=100000', 400],
  ];
  for (const [name, token, method, path, status] of apiCases) {
    await scenario(name, `${status}${status === 400 ? ' with a message' : ''}`, async () => {
      const r = await api(token, method, path);
      return {
        got: `${r.status}${r.message ? ` "${r.message.slice(0, 90)}"` : ''}`,
        ok: r.status === status && (status !== 400 || r.message !== ''),
      };
    });
  }
  await scenario(
    'a Viewer asking for every position with limit=-1',
    `at most QUERY_LIMIT_MAX (1000) rows`,
    async () => {
      const r = await api(viewer, 'GET', '/items/positions?limit=-1&fields=id');
      const n = (r.data as unknown as unknown[]).length;
      return { got: `${r.status}, ${n} rows`, ok: r.status === 200 && n <= 1000 };
    },
  );

  out('## Operator privilege attempts');
  const cmd = (token: string, body: Record<string, unknown>) => api(token, 'POST', '/items/commands', body);
  const target = idOf(victim);
  for (const text of [
    'setparam 2004:evil.example.com',
    'setparam 02004:evil',
    'SETPARAM2004:evil',
    'setparam 1000:0;2005:7000',
    'defaultcfg',
  ]) {
    await scenario(`Operator creates "${text}"`, '403: needs the Admin role', async () => {
      const r = await cmd(operator, { device: target, text });
      return { got: `${r.status} "${r.message.slice(0, 90)}"`, ok: r.status === 403 };
    });
  }
  await scenario('Operator creates "setparam 2004.0:evil"', '400: not a parameter id', async () => {
    const r = await cmd(operator, { device: target, text: 'setparam 2004.0:evil' });
    return { got: `${r.status} "${r.message.slice(0, 90)}"`, ok: r.status === 400 };
  });
  await scenario('Operator sends a payload with control bytes', '403: not a command a non-admin may send', async () => {
    const r = await cmd(operator, { device: target, text: 'getinfo', payload_hex: '0d0a73657470617261' });
    return { got: `${r.status} "${r.message.slice(0, 90)}"`, ok: r.status === 403 };
  });
  await scenario('Operator forges lifecycle fields (status answered)', '403', async () => {
    const r = await cmd(operator, { device: target, text: 'getinfo', status: 'answered', response: 'fake' });
    return { got: `${r.status} "${r.message.slice(0, 90)}"`, ok: r.status === 403 };
  });
  await scenario(
    "Operator retries an Administrator's expired setparam",
    '403: needs the Admin role; stays expired',
    async () => {
      const c = await cmd(admin, {
        device: target,
        text: 'setparam 2004:fleet.example.org',
        expires_at: new Date(Date.now() + 1200).toISOString(),
      });
      const id = c.data.id as number;
      // Polled in the database: API calls from this address count against the rate limiter.
      for (let i = 0; i < 100; i++) {
        if ((await db.knex('commands').where({ id }).first('status'))?.status === 'expired') break;
        await new Promise((r) => setTimeout(r, 200));
      }
      const r = await api(operator, 'POST', `/fleet-commands/${id}/retry`);
      const after = (await api(admin, 'GET', `/items/commands/${id}?fields=status`)).data.status;
      return {
        got: `${r.status} "${r.message.slice(0, 70)}", command ${after}`,
        ok: r.status === 403 && after === 'expired',
      };
    },
  );
  await scenario('Viewer creates a command', '403', async () => {
    const r = await cmd(viewer, { device: target, text: 'getinfo' });
    return { got: `${r.status}`, ok: r.status === 403 };
  });

  out('## API flood');
  await scenario(
    `250 requests at once from one address (127.0.0.7; limit ${RATE_POINTS} per window)`,
    `${RATE_POINTS} answered, the rest 429 (rate limiter), none 5xx`,
    async () => {
      const statuses = await Promise.all(
        Array.from({ length: 250 }, () => getFrom('127.0.0.7', '/items/devices?limit=1&fields=id', viewer)),
      );
      const count = (s: number) => statuses.filter((r) => r.status === s).length;
      const fivexx = statuses.filter((r) => r.status >= 500);
      const why = [...new Set(fivexx.map((r) => `${r.status} "${r.message.slice(0, 80)}"`))].join('; ');
      if (fivexx.length > 0) {
        // What Directus logged about them, before its log goes with its temporary folder.
        const log = readFileSync(directus.logFile, 'utf8').split('\n');
        for (const line of log.filter((l) => /error|fail|pressure/i.test(l)).slice(-5))
          out(`        log: ${line.slice(0, 300)}`);
      }
      return {
        got: `${count(200)}×200, ${count(429)}×429, ${fivexx.length}×5xx${why ? ` (${why})` : ''}`,
        ok: count(200) === RATE_POINTS && count(429) === 250 - RATE_POINTS && fivexx.length === 0,
      };
    },
  );

  // --- nothing acknowledged lost ------------------------------------------------------------------
  honestRunning = false;
  await Promise.all(honestLoops);
  // Each device's acknowledged records against its rows (a surplus elsewhere cannot hide a loss).
  const storedBy = async () => {
    const r = await db
      .knex('positions as p')
      .join('devices as d', 'd.id', 'p.device')
      .whereIn('d.imei', [...ackedBy.keys()])
      .groupBy('d.imei')
      .select('d.imei', db.knex.raw('count(*)::int AS n'));
    return new Map(r.map((x: { imei: string; n: number }) => [x.imei, Number(x.n)]));
  };
  const lostOf = (stored: Map<string, number>) =>
    [...ackedBy].reduce((sum, [imei, n]) => sum + Math.max(0, n - (stored.get(imei) ?? 0)), 0);
  const deadline = Date.now() + 60_000;
  let stored = await storedBy();
  while (lostOf(stored) > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    stored = await storedBy();
  }
  const lost = lostOf(stored);
  out('## result');
  const matched = outcomes.filter((o) => o.ok).length;
  out(
    `scenarios: ${outcomes.length}, matched the documented answer: ${matched}, differed: ${outcomes.length - matched}`,
  );
  const storedTotal = [...stored.values()].reduce((x, y) => x + y, 0);
  out(
    `acknowledged records: ${ackedTotal()} (${ackedBy.size} devices), stored in positions: ${storedTotal}, lost: ${lost}`,
  );

  await processor.stop();
  await ingestion.stop();
  await directus.stop();
  await redis.cleanup();
  await db.drop();
  process.exitCode = matched === outcomes.length && lost === 0 ? 0 : 1;
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
