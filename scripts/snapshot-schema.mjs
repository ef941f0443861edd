// Regenerates snapshots/schema.yaml from directus/schema/collections.mjs (needs PostgreSQL with PostGIS).
// Usage: npm run schema:snapshot

import { SNAPSHOT_FILE } from '../directus/src/paths.mjs';
import { connectionFromEnv } from '../directus/src/postgres.mjs';
import { makeSnapshot } from '../directus/src/schema-snapshot.mjs';

await makeSnapshot({
  connection: connectionFromEnv(process.env),
  outFile: SNAPSHOT_FILE,
  log: (m) => console.log(`[snapshot] ${m}`),
});
