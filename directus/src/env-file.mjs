// @ts-check
/**
 * `.env` files: Directus reads its configuration from one (CONFIG_PATH), and that file beats the
 * process environment, so each Directus process we start gets its own complete file.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

/**
 * Parses KEY=value lines (comments, blank lines and surrounding quotes handled; no interpolation).
 * @param {string} text
 * @returns {Record<string, string>}
 */
export function parseEnv(text) {
  /** @type {Record<string, string>} */
  const out = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq).trim();
    let value = line.slice(eq + 1).trim();
    if (value.length >= 2 && (value[0] === '"' || value[0] === "'") && value.at(-1) === value[0]) {
      value = value.slice(1, -1);
    }
    out[key] = value;
  }
  return out;
}

/**
 * Quotes a value the way dotenv (which Directus uses) reads it back unchanged: single quotes are
 * literal; double quotes would expand \\n.
 * @param {string} key
 * @param {string} s
 */
function quote(key, s) {
  if (!/[\s#"'\\`]/.test(s)) return s;
  if (!s.includes("'")) return `'${s}'`;
  if (!/["\\`]/.test(s)) return `"${s}"`;
  throw new Error(`${key}: a value with both quote kinds cannot be written to a .env file`);
}

/**
 * @param {Record<string, string | number | boolean | undefined>} env
 * @returns {string}
 */
export function formatEnv(env) {
  const lines = [];
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) continue;
    const s = String(value);
    if (/[\r\n]/.test(s)) throw new Error(`${key}: multi-line values are not supported in .env files`);
    lines.push(`${key}=${quote(key, s)}`);
  }
  return `${lines.join('\n')}\n`;
}

/**
 * @param {string} path
 * @returns {Record<string, string>}
 */
export function readEnvFile(path) {
  return existsSync(path) ? parseEnv(readFileSync(path, 'utf8')) : {};
}

/**
 * @param {string} path
 * @param {Record<string, string | number | boolean | undefined>} env
 */
export function writeEnvFile(path, env) {
  writeFileSync(path, formatEnv(env), { mode: 0o600 });
}

/** A fresh random secret (Directus signs tokens with SECRET; it must survive restarts). */
export function generateSecret() {
  return randomBytes(32).toString('base64url');
}

/**
 * Creates `.env` from `.env.example` with a generated SECRET, unless `.env` already exists.
 * Returns true when it wrote the file.
 * @param {string} envPath
 * @param {string} examplePath
 */
export function ensureEnvFile(envPath, examplePath) {
  if (existsSync(envPath)) return false;
  const example = readFileSync(examplePath, 'utf8');
  const secret = generateSecret();
  const text = /^SECRET=.*$/m.test(example)
    ? example.replace(/^SECRET=.*$/m, `SECRET=${secret}`)
    : `${example.trimEnd()}\nSECRET=${secret}\n`;
  writeFileSync(envPath, text, { mode: 0o600 });
  return true;
}
