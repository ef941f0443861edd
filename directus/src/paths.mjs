// @ts-check
/**
 * Where things live. Every path is absolute and derived from this file, so scripts work from any
 * working directory. `FLEET_*` variables override them inside containers, where the layout differs.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The `directus/` workspace: Directus runs with this as its working directory (it needs a package.json there). */
export const DIRECTUS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = resolve(DIRECTUS_DIR, '..');

/** The partial (version 2) schema snapshot applied on every deploy. */
export const SNAPSHOT_FILE = process.env.FLEET_SNAPSHOT_FILE ?? join(REPO_ROOT, 'snapshots', 'schema.yaml');
/** SQL run after `schema apply`: what a snapshot cannot express (composite and GiST indexes). */
export const AFTER_SCHEMA_SQL = process.env.FLEET_AFTER_SCHEMA_SQL ?? join(DIRECTUS_DIR, 'sql', 'after-schema.sql');
/** SQL run before and after `schema apply`: positions partitioned by time (and the conversion to it). */
export const POSITIONS_SQL = process.env.FLEET_POSITIONS_SQL ?? join(DIRECTUS_DIR, 'sql', 'positions-partitions.sql');
/** Seed files (roles, policies, permissions, settings, dashboards), applied in file-name order. */
export const SEED_DIR = process.env.FLEET_SEED_DIR ?? join(DIRECTUS_DIR, 'seed');
/**
 * Directus's EXTENSIONS_PATH: a folder whose sub-folders are extensions. It holds one symlink,
 * `fleet -> ../../extensions`, so the bundle is loaded straight from its workspace.
 */
export const EXTENSIONS_PATH = join(DIRECTUS_DIR, 'extensions');
export const EXTENSION_DIR = join(REPO_ROOT, 'extensions');

/** Directus's CLI entry (`directus` bin). */
export function directusCli() {
  const candidates = [
    process.env.FLEET_DIRECTUS_CLI,
    join(REPO_ROOT, 'node_modules', 'directus', 'cli.js'),
    join(DIRECTUS_DIR, 'node_modules', 'directus', 'cli.js'),
  ];
  for (const c of candidates) if (c && existsSync(c)) return c;
  throw new Error('Directus is not installed: run `npm install` at the repository root.');
}

/**
 * Directus 12 needs Node >= 22. `npm install` puts Node 22 in node_modules/.bin (the `node`
 * package) because the system Node may be older; prefer it, else the running Node if it is new enough.
 */
export function directusNode() {
  const bundled = join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node');
  if (process.env.FLEET_DIRECTUS_NODE) return process.env.FLEET_DIRECTUS_NODE;
  if (existsSync(bundled)) return bundled;
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 22) return process.execPath;
  throw new Error(
    `Directus needs Node >= 22 (this is ${process.version}) and node_modules/node is missing: run \`npm install\`.`,
  );
}
