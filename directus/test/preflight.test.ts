/**
 * The preflight of `npm start` and `npm test`: what to install given what is missing and what the
 * machine is (a pure decision), and the real checks against this machine's PostgreSQL, Redis and
 * Chromium (both installed here, so the real path runs without reinstalling anything).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TEST_PG, TEST_REDIS_URL } from '../../test/support/constants.js';
import { freePort } from '../src/net.mjs';
import {
  chromiumPath,
  ensureSystemPackages,
  findMissing,
  type Missing,
  planSystemInstall,
  preflight,
  type SystemFacts,
  systemFacts,
} from '../src/preflight.mjs';

const ROOT_DEBIAN: SystemFacts = { root: true, debianLike: true, apt: true, optOut: false };
const POSTGIS_15: Missing = { need: 'postgis', major: 15, localServer: true, debianServer: true };
const CHROMIUM: Missing = { need: 'chromium', customPath: null };

describe('what to install', () => {
  it('installs PostGIS for the running server major and Chromium as root on Debian/Ubuntu', () => {
    expect(planSystemInstall([POSTGIS_15, CHROMIUM], ROOT_DEBIAN)).toEqual({
      install: ['postgresql-15-postgis-3', 'chromium'],
      manual: [],
    });
    expect(planSystemInstall([{ ...POSTGIS_15, major: 16 }], ROOT_DEBIAN).install).toEqual(['postgresql-16-postgis-3']);
    expect(planSystemInstall([], ROOT_DEBIAN)).toEqual({ install: [], manual: [] });
  });

  it('gives the exact command instead when not root, opted out, or without apt-get', () => {
    expect(planSystemInstall([POSTGIS_15, CHROMIUM], { ...ROOT_DEBIAN, root: false })).toEqual({
      install: [],
      manual: [
        {
          needs: ['postgis', 'chromium'],
          say: 'run `sudo apt-get update && sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql-15-postgis-3 chromium` (not running as root)',
        },
      ],
    });
    expect(planSystemInstall([CHROMIUM], { ...ROOT_DEBIAN, optOut: true }).manual).toEqual([
      {
        needs: ['chromium'],
        say: 'run `apt-get update && env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium` (FLEET_NO_SYSTEM_INSTALL is set)',
      },
    ]);
    expect(planSystemInstall([POSTGIS_15], { ...ROOT_DEBIAN, apt: false }).manual[0]?.say).toMatch(/apt-get not found/);
  });

  it('never installs PostGIS for a server that is not this distribution package on this machine', () => {
    const remote = planSystemInstall([{ ...POSTGIS_15, localServer: false }, CHROMIUM], ROOT_DEBIAN);
    expect(remote.install).toEqual(['chromium']);
    expect(remote.manual).toEqual([
      { needs: ['postgis'], say: 'install PostGIS 3 on the PostgreSQL 15 server (it is not on this machine)' },
    ]);
    const foreign = planSystemInstall([{ ...POSTGIS_15, debianServer: false }], ROOT_DEBIAN);
    expect(foreign.install).toEqual([]);
    expect(foreign.manual[0]?.say).toMatch(/PostGIS 3 for PostgreSQL 15 with your system's package manager/);
  });

  it('asks for a Chromium elsewhere than Debian/Ubuntu, or for a CHROMIUM_PATH that does not exist', () => {
    expect(planSystemInstall([CHROMIUM], { ...ROOT_DEBIAN, debianLike: false }).manual[0]?.say).toMatch(
      /install Chromium and set CHROMIUM_PATH/,
    );
    expect(planSystemInstall([{ need: 'chromium', customPath: '/opt/c' }], ROOT_DEBIAN)).toEqual({
      install: [],
      manual: [{ needs: ['chromium'], say: 'CHROMIUM_PATH=/opt/c does not exist: point it at a Chromium or unset it' }],
    });
  });

  it('installs HAProxy for the load-balancer tests like Chromium, or asks for it', () => {
    const haproxy = { need: 'haproxy', customPath: null } as const;
    expect(planSystemInstall([haproxy], ROOT_DEBIAN)).toEqual({ install: ['haproxy'], manual: [] });
    expect(planSystemInstall([haproxy], { ...ROOT_DEBIAN, debianLike: false }).manual[0]?.say).toBe(
      'install HAProxy and set HAPROXY_PATH to its executable',
    );
    expect(planSystemInstall([{ need: 'haproxy', customPath: '/opt/h' }], ROOT_DEBIAN).manual[0]?.say).toBe(
      'HAPROXY_PATH=/opt/h does not exist: point it at an HAProxy or unset it',
    );
  });

  it('accounts for every missing thing exactly once: installed now or in the instructions', () => {
    const missing = fc.oneof(
      fc.record({
        need: fc.constant('postgis' as const),
        major: fc.integer({ min: 14, max: 18 }),
        localServer: fc.boolean(),
        debianServer: fc.boolean(),
      }),
      fc.record({ need: fc.constant('chromium' as const), customPath: fc.option(fc.constant('/x/chromium')) }),
    );
    const sys = fc.record({ root: fc.boolean(), debianLike: fc.boolean(), apt: fc.boolean(), optOut: fc.boolean() });
    fc.assert(
      fc.property(fc.uniqueArray(missing, { selector: (m) => m.need }), sys, (ms, s) => {
        const plan = planSystemInstall(ms, s);
        const installed = plan.install.map((p) => (p === 'chromium' ? 'chromium' : 'postgis'));
        const asked = plan.manual.flatMap((m) => m.needs);
        expect([...installed, ...asked].sort()).toEqual(ms.map((m) => m.need).sort());
        if (plan.install.length) expect(s.root && s.apt && s.debianLike && !s.optOut).toBe(true);
      }),
    );
  });
});

describe('this machine', () => {
  const connection = { ...TEST_PG, database: 'postgres' };

  it('reads root, distribution, apt-get and the opt-out variable', () => {
    const sys = systemFacts({ FLEET_NO_SYSTEM_INSTALL: '1' });
    expect(sys).toEqual({
      root: process.getuid?.() === 0,
      debianLike: expect.any(Boolean),
      apt: expect.any(Boolean),
      optOut: true,
    });
    expect(systemFacts({}).optOut).toBe(false);
    expect(systemFacts({ FLEET_NO_SYSTEM_INSTALL: '0' }).optOut).toBe(false);
  });

  it('finds PostGIS and Chromium present, so installs nothing and says nothing', async () => {
    const logged: string[] = [];
    expect(await findMissing(['postgis', 'chromium'], connection, {})).toEqual([]);
    expect(
      await ensureSystemPackages({ needs: ['postgis', 'chromium'], connection, env: {}, log: (m) => logged.push(m) }),
    ).toEqual([]);
    expect(logged).toEqual([]);
    expect(await preflight({ connection, redisUrl: TEST_REDIS_URL, needs: ['postgis', 'chromium'], env: {} })).toEqual(
      [],
    );
  });

  it('stops on a missing Chromium with what to do, and installs nothing it cannot fit', async () => {
    const env = { CHROMIUM_PATH: '/nonexistent/chromium' };
    expect(chromiumPath(env)).toBe('/nonexistent/chromium');
    const logged: string[] = [];
    const problems = await preflight({
      connection,
      redisUrl: TEST_REDIS_URL,
      needs: ['postgis', 'chromium'],
      env,
      log: (m) => logged.push(m),
    });
    expect(problems).toEqual([
      'Chromium (for the browser tests) missing: CHROMIUM_PATH=/nonexistent/chromium does not exist: point it at a Chromium or unset it.',
    ]);
    expect(logged).toEqual([]);
    // `npm start` does not need Chromium.
    expect(await preflight({ connection, redisUrl: TEST_REDIS_URL, needs: ['postgis'], env })).toEqual([]);
  });

  it('reports an unreachable PostgreSQL once, without trying to install PostGIS for it', async () => {
    const port = await freePort();
    const logged: string[] = [];
    const problems = await preflight({
      connection: { ...connection, port },
      redisUrl: TEST_REDIS_URL,
      needs: ['postgis'],
      env: {},
      log: (m) => logged.push(m),
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/PostgreSQL is not reachable at 127\.0\.0\.1:\d+/);
    expect(logged).toEqual([]);
  });
});
