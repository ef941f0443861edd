// Compares the database configured in .env with snapshots/schema.yaml (`directus schema apply
// --dry-run`); exits 1 and lists the differences when they differ. Usage: npm run schema:check
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareSchema } from '../directus/src/deploy.mjs';
import { readEnvFile } from '../directus/src/env-file.mjs';
import { REPO_ROOT } from '../directus/src/paths.mjs';
import { connectionFromEnv } from '../directus/src/postgres.mjs';

const env = { ...readEnvFile(join(REPO_ROOT, '.env')), ...process.env };
const stateDir = mkdtempSync(join(tmpdir(), 'fleet-schema-check-'));
try {
  const { inSync, output } = await compareSchema({ connection: connectionFromEnv(env), stateDir });
  const report = output
    .split('\n')
    .filter((l) => !l.startsWith('{'))
    .join('\n')
    .trim();
  console.log(inSync ? 'The database matches snapshots/schema.yaml: no changes to apply.' : report);
  process.exitCode = inSync ? 0 : 1;
} finally {
  rmSync(stateDir, { recursive: true, force: true });
}
