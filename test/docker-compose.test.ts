/**
 * docker-compose.yml and daemon/Dockerfile cannot be run here (no Docker), so their structure is
 * checked instead: services, health checks, start order, persistence, ports, and that every file
 * they reference exists in the repository.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from '../directus/src/paths.mjs';

interface Service {
  image?: string;
  build?: { context: string; dockerfile: string };
  command?: string[];
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  deploy?: { replicas?: number };
  networks?: Record<string, { ipv4_address?: string }>;
}

/** The daemon's roles, one service each (two ingestion instances behind `lb`). */
const DAEMON_ROLES = ['ingest-a', 'ingest-b', 'process', 'derive', 'alerts'];

const compose = parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const s = compose.services;
const directusVersion = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules/directus/package.json'), 'utf8')).version;

describe('docker-compose.yml', () => {
  it('has the stack and the deploy steps', () => {
    expect(Object.keys(s).sort()).toEqual(
      [
        'alerts',
        'derive',
        'deploy-db',
        'deploy-finish',
        'deploy-schema',
        'directus',
        'ingest-a',
        'ingest-b',
        'lb',
        'postgres',
        'process',
        'proxy',
        'redis',
      ].sort(),
    );
  });

  it('runs PostGIS with a volume and a pg_isready health check', () => {
    expect(s.postgres!.image).toMatch(/^postgis\/postgis:/);
    expect(s.postgres!.volumes).toContain('postgres-data:/var/lib/postgresql/data');
    expect(s.postgres!.healthcheck!.test.join(' ')).toContain('pg_isready');
  });

  it('persists Redis with AOF on a volume and does not publish it', () => {
    expect(s.redis!.image).toMatch(/^redis:7/);
    const cmd = s.redis!.command!;
    expect(cmd[cmd.indexOf('--appendonly') + 1]).toBe('yes');
    // Acknowledged frames survive a host crash: every write is fsynced before the ack.
    expect(cmd[cmd.indexOf('--appendfsync') + 1]).toBe('always');
    expect(s.redis!.volumes).toContain('redis-data:/data');
    expect(s.redis!.ports).toBeUndefined();
  });

  it('uses the Directus version the repository is tested with, with the bundle mounted', () => {
    expect(s.directus!.image).toBe(`directus/directus:${directusVersion}`);
    expect(s['deploy-schema']!.image).toBe(`directus/directus:${directusVersion}`);
    expect(s.directus!.volumes).toEqual(
      expect.arrayContaining([
        './extensions/package.json:/directus/extensions/fleet/package.json:ro',
        './extensions/dist:/directus/extensions/fleet/dist:ro',
      ]),
    );
    expect(s.directus!.environment).toMatchObject({
      EXTENSIONS_MUST_LOAD: 'true',
      WEBSOCKETS_ENABLED: 'true',
      CACHE_SCHEMA_FREEZE_ENABLED: 'true',
      SYNCHRONIZATION_STORE: 'redis',
      REDIS: 'redis://redis:6379',
      DB_HOST: 'postgres',
    });
    // /server/health needs a token in Directus 12; /server/ping does not. The image has busybox wget, no curl.
    expect(s.directus!.healthcheck!.test).toEqual(['CMD', 'wget', '-qO-', 'http://127.0.0.1:8055/server/ping']);
  });

  it('deploys in order: database, schema, indexes + seed, then the services', () => {
    expect(s['deploy-db']!.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    expect(s['deploy-db']!.command).toEqual(['node', 'directus/src/deploy-cli.mjs', 'prepare']);
    expect(s['deploy-schema']!.depends_on!['deploy-db']).toEqual({ condition: 'service_completed_successfully' });
    const schemaCmd = s['deploy-schema']!.command!.join(' ');
    expect(schemaCmd.indexOf('bootstrap')).toBeGreaterThan(-1);
    expect(schemaCmd.indexOf('schema apply --yes /fleet/snapshots/schema.yaml')).toBeGreaterThan(
      schemaCmd.indexOf('bootstrap'),
    );
    expect(s['deploy-schema']!.volumes).toContain('./snapshots:/fleet/snapshots:ro');
    // Directus sees the partitioned positions table only through the inspector patch, applied first.
    for (const name of ['deploy-schema', 'directus']) {
      expect(s[name]!.command!.join(' '), name).toMatch(/^sh -c node \/fleet\/inspector-patch\.mjs \/directus && /);
      expect(s[name]!.volumes, name).toContain('./directus/src/inspector-patch.mjs:/fleet/inspector-patch.mjs:ro');
    }
    expect(s['deploy-finish']!.depends_on!['deploy-schema']).toEqual({ condition: 'service_completed_successfully' });
    expect(s['deploy-finish']!.command).toEqual(['node', 'directus/src/deploy-cli.mjs', 'finish']);
    for (const name of ['directus', ...DAEMON_ROLES]) {
      expect(s[name]!.depends_on!['deploy-finish'], name).toEqual({ condition: 'service_completed_successfully' });
    }
  });

  it('publishes Directus only behind TLS, with fleet-sized query and rate limits', () => {
    expect(s.directus!.ports).toBeUndefined();
    expect(s.proxy!.ports).toEqual(expect.arrayContaining(['443:443']));
    expect(s.proxy!.volumes).toContain('./directus/proxy/Caddyfile:/etc/caddy/Caddyfile:ro');
    expect(readFileSync(join(REPO_ROOT, 'directus/proxy/Caddyfile'), 'utf8')).toContain('reverse_proxy directus:8055');
    expect(s.directus!.environment!.PUBLIC_URL).toMatch(/^https:\/\//);
    expect(Number(s.directus!.environment!.QUERY_LIMIT_MAX)).toBeGreaterThan(0);
    expect(s.directus!.environment).toMatchObject({ RATE_LIMITER_ENABLED: 'true', RATE_LIMITER_STORE: 'redis' });
  });

  it('runs each daemon role as its own service from the daemon image, metrics inside the network', () => {
    for (const name of DAEMON_ROLES) {
      const role = name.startsWith('ingest-') ? 'ingest' : name;
      expect(s[name]!.command, name).toEqual(['node', 'daemon/dist/cli.js', role]);
      expect(s[name]!.build, name).toEqual({ context: '.', dockerfile: 'daemon/Dockerfile' });
      expect(s[name]!.environment, name).toMatchObject({
        REDIS: 'redis://redis:6379',
        DB_HOST: 'postgres',
        METRICS_HOST: '0.0.0.0',
      });
    }
    expect(s.process!.deploy?.replicas).toBeGreaterThanOrEqual(2);
  });

  it('publishes the device port only on the balancer, TCP only, with every instance behind it and trusting it alone', () => {
    expect(s.lb!.ports).toEqual(['5027:5027/tcp']);
    const lbAddress = s.lb!.networks?.default?.ipv4_address;
    expect(lbAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const cfg = readFileSync(join(REPO_ROOT, 'daemon/deploy/haproxy.cfg'), 'utf8');
    expect(s.lb!.volumes).toContain('./daemon/deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro');
    expect(cfg).toMatch(/^\s*mode tcp$/m);
    const instances = ['ingest-a', 'ingest-b'];
    for (const name of instances) {
      expect(s[name]!.ports, name).toBeUndefined();
      expect(s[name]!.environment, name).toMatchObject({
        INSTANCE_ID: name,
        INGEST_PORT: '5027',
        INGEST_UDP: 'false',
        INGEST_PROXY_FROM: `${lbAddress}/32`,
      });
      expect(cfg).toMatch(new RegExp(`^\\s*server ${name} ${name}:5027 send-proxy-v2 check check-send-proxy`, 'm'));
      expect(s.lb!.depends_on?.[name]).toEqual({ condition: 'service_healthy' });
    }
    expect(new Set(instances.map((n) => s[n]!.environment!.INSTANCE_ID)).size).toBe(instances.length);
  });

  it('declares every named volume it uses and references only files that exist', () => {
    for (const svc of Object.values(s)) {
      for (const v of svc.volumes ?? []) {
        const source = v.split(':')[0]!;
        if (source.startsWith('./')) {
          // extensions/dist is a build output; everything else is committed
          if (source !== './extensions/dist') expect(existsSync(join(REPO_ROOT, source)), source).toBe(true);
        } else {
          expect(compose.volumes, source).toHaveProperty(source);
        }
      }
      if (svc.build) expect(existsSync(join(REPO_ROOT, svc.build.context, svc.build.dockerfile))).toBe(true);
    }
    expect(existsSync(join(REPO_ROOT, 'directus/src/deploy-cli.mjs'))).toBe(true);
  });
});

describe('docker-compose.cluster.yml (cluster mode)', () => {
  const cluster = parse(readFileSync(join(REPO_ROOT, 'docker-compose.cluster.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, Service & { entrypoint?: string[] }>;
    volumes: Record<string, unknown>;
  };
  const c = cluster.services;
  const nodes = Object.keys(c).filter((n) => /^redis-\d+$/.test(n));

  it('runs six persistent cluster nodes on the stack network, joined as 3 masters with a replica each', () => {
    expect(nodes).toHaveLength(6);
    const addresses = nodes.map((n) => `${c[n]!.networks!.default!.ipv4_address}:6379`);
    for (const n of nodes) {
      const cmd = c[n]!.command!;
      expect(cmd[cmd.indexOf('--cluster-enabled') + 1], n).toBe('yes');
      expect(cmd[cmd.indexOf('--appendonly') + 1], n).toBe('yes');
      expect(cmd[cmd.indexOf('--appendfsync') + 1], n).toBe('always');
      expect(c[n]!.ports, n).toBeUndefined();
      expect(cluster.volumes).toHaveProperty(c[n]!.volumes![0]!.split(':')[0]!);
    }
    const init = c['redis-cluster-init']!.command!.join(' ');
    for (const a of addresses) expect(init).toContain(a);
    expect(init).toMatch(/--cluster-replicas 1 --cluster-yes/);
    // The stack's network holds the addresses.
    for (const a of addresses) expect(a).toMatch(/^172\.28\./);
  });

  it('points the Redis users at the cluster, waits for a replica before acking, and leaves Directus its own Redis', () => {
    const seeds = nodes.map((n) => `${c[n]!.networks!.default!.ipv4_address}:6379`).join(',');
    for (const name of ['directus', 'ingest-a', 'ingest-b', 'process']) {
      expect(s[name], name).toBeDefined();
      expect(c[name]!.environment, name).toMatchObject({ REDIS_CLUSTER_NODES: seeds, REDIS_WAIT_REPLICAS: '1' });
      expect(c[name]!.depends_on!['redis-cluster-init'], name).toEqual({ condition: 'service_completed_successfully' });
    }
    // Directus 12 cannot use a cluster for its cache, rate limiter and bus: it keeps `redis`.
    expect(c.directus!.environment!.REDIS).toBeUndefined();
    expect(s.directus!.environment!.REDIS).toBe('redis://redis:6379');
  });
});

describe('daemon/Dockerfile', () => {
  const dockerfile = readFileSync(join(REPO_ROOT, 'daemon/Dockerfile'), 'utf8');

  it('copies only paths that exist', () => {
    const copies = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(copies.length).toBeGreaterThan(5);
    for (const src of copies) expect(existsSync(join(REPO_ROOT, src)), src).toBe(true);
  });

  it('runs the built daemon on Node 22 as an unprivileged user and exposes the device port', () => {
    expect(dockerfile).toMatch(/^FROM node:22/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^EXPOSE .*5027\/tcp.*5027\/udp/m);
    expect(dockerfile).toContain('CMD ["node", "daemon/dist/cli.js", "all"]');
    expect(dockerfile).toContain('tsc -p daemon/tsconfig.build.json');
  });
});
