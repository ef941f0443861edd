// @ts-check
/** The extension bundle (`extensions/`): Directus loads its `dist/`, so it must be built and current. */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { EXTENSION_DIR, REPO_ROOT } from './paths.mjs';

/** @param {string} path @returns {number} */
function newestMtime(path) {
  const st = statSync(path);
  if (!st.isDirectory()) return st.mtimeMs;
  let newest = st.mtimeMs;
  for (const entry of readdirSync(path)) {
    if (entry === 'node_modules' || entry === 'dist') continue;
    newest = Math.max(newest, newestMtime(join(path, entry)));
  }
  return newest;
}

/**
 * True when the bundle must be (re)built: a dist file is missing or older than a source file.
 * @param {string} [dir]
 */
export function extensionBundleStale(dir = EXTENSION_DIR) {
  const outputs = ['dist/api.js', 'dist/app.js'].map((f) => join(dir, f));
  if (!outputs.every((f) => existsSync(f))) return true;
  const built = Math.min(...outputs.map((f) => statSync(f).mtimeMs));
  // The bundle also compiles in the daemon's contract (and the protocol data it reads).
  const sources = ['src', 'package.json', 'extension.config.js', '../daemon/src/contract', '../daemon/src/protocol']
    .map((f) => join(dir, f))
    .filter((f) => existsSync(f));
  return sources.some((f) => newestMtime(f) > built);
}

/** Builds the bundle (`npm run build -w extensions`); throws with the build output when it fails. */
export function buildExtensionBundle() {
  const r = spawnSync('npm', ['run', 'build', '-w', 'extensions'], { cwd: REPO_ROOT, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`building the extension bundle failed:\n${r.stdout}\n${r.stderr}`);
}
