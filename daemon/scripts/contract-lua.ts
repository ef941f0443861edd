/**
 * Writes daemon/src/contract/lua/scripts.generated.ts from the .lua files next to it, so every
 * consumer (tsx, the tsc build, the Directus extension bundle) gets the scripts as plain strings
 * without copying or loading files at run time. `npm run contract:lua` after editing a .lua file;
 * the contract's tests fail while the module is stale.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const LUA_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'contract', 'lua');
export const GENERATED = join(LUA_DIR, 'scripts.generated.ts');

/** The module's text for the .lua files in `dir` (sorted, so the output is stable). */
export function luaModuleSource(dir = LUA_DIR): string {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.lua'))
    .sort();
  const entries = files.map(
    (f) => `  '${basename(f, '.lua')}': ${JSON.stringify(readFileSync(join(dir, f), 'utf8'))},`,
  );
  return [
    '// Generated from the .lua files in this folder by `npm run contract:lua`; do not edit.',
    'export const LUA_SOURCES = {',
    ...entries,
    '} as const;',
    '',
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(GENERATED, luaModuleSource());
  console.log(`wrote ${GENERATED}`);
}
