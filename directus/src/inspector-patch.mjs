// @ts-check
/**
 * One patch to Directus 12.4: its PostgreSQL schema inspector (@directus/schema) looks only at
 * ordinary tables (`relkind = 'r'`) when it lists tables and columns, so a partitioned table
 * (relkind 'p') — `positions` — is invisible to `schema snapshot`/`schema apply` (which then try
 * to create it again) and to the Data Model settings. What serves items (the schema overview,
 * read through information_schema) already sees it. The patch widens those six conditions to
 * `relkind IN ('r', 'p')`; the partitions themselves are ordinary tables in the `partitions`
 * schema, which Directus never inspects.
 *
 * Applied before every Directus run (directus-process.mjs) and, in containers, by
 * `node inspector-patch.mjs <directus dir>` before Directus starts (docker-compose.yml). The file is
 * rewritten through a rename, so a node_modules of hard links (several checkouts sharing one
 * install) is never changed behind another checkout's back. If Directus changes the inspector so
 * the expected text is missing, it fails loudly rather than starting with an inspector blind to
 * `positions`.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ORIGINAL = "rel.relkind = 'r'";
const PATCHED = "rel.relkind IN ('r', 'p')";
/** How many times the PostgreSQL inspector of @directus/schema 14.0 says ORIGINAL. */
const EXPECTED = 6;

/**
 * The inspector's file under a Directus installation: `<dir>/node_modules/@directus/schema/…`,
 * searched from `dir` upwards (the repository's root node_modules, or /directus in the image).
 * @param {string} dir
 */
export function inspectorFile(dir) {
  for (let d = resolve(dir); ; d = dirname(d)) {
    const f = join(d, 'node_modules', '@directus', 'schema', 'dist', 'index.js');
    if (existsSync(f)) return f;
    if (dirname(d) === d) throw new Error(`@directus/schema not found from ${dir}`);
  }
}

/**
 * Patches the inspector in place if it is not yet. Returns true if it changed the file.
 * @param {string} file
 */
export function patchSchemaInspector(file) {
  const text = readFileSync(file, 'utf8');
  const patched = text.split(PATCHED).length - 1;
  const original = text.split(ORIGINAL).length - 1;
  if (patched === EXPECTED && original === 0) return false;
  if (original !== EXPECTED || patched !== 0) {
    throw new Error(
      `${file}: expected ${EXPECTED} "${ORIGINAL}" in Directus's schema inspector, found ${original} (and ${patched} patched); ` +
        'the partitioned positions table needs the inspector to list partitioned tables: update directus/src/inspector-patch.mjs',
    );
  }
  const tmp = `${file}.fleet-${process.pid}`;
  writeFileSync(tmp, text.replaceAll(ORIGINAL, PATCHED));
  renameSync(tmp, file);
  return true;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const file = inspectorFile(process.argv[2] ?? process.cwd());
  console.log(`[inspector-patch] ${patchSchemaInspector(file) ? 'patched' : 'already patched'}: ${file}`);
}
