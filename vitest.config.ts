import { defineConfig } from 'vitest/config';

// One test command for every workspace. Tests talk to the real local PostgreSQL and Redis; each
// file gets its own database and Redis key prefix (see test/support), so files may run in parallel.
export default defineConfig({
  test: {
    include: ['daemon/**/*.test.ts', 'extensions/**/*.test.ts', 'directus/**/*.test.ts', 'test/**/*.test.ts'],
    // directus/extensions/fleet is a symlink to extensions/: don't run those tests twice.
    exclude: ['**/node_modules/**', '**/dist/**', 'directus/extensions/**'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
