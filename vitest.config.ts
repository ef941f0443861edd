import { defineConfig } from 'vitest/config';

// One test command for every workspace. Tests talk to the real local PostgreSQL and Redis; each
// file gets its own database and Redis key prefix (see test/support), so files may run in parallel.
export default defineConfig({
  test: {
    include: ['daemon/**/*.test.ts', 'extensions/**/*.test.ts', 'directus/**/*.test.ts', 'test/**/*.test.ts'],
    // directus/extensions/fleet is a symlink to extensions/: don't run those tests twice.
    exclude: ['**/node_modules/**', '**/dist/**', 'directus/extensions/**'],
    globalSetup: ['test/global-setup.ts'],
    // Bounds, not timing checks: a test that starts Directus or a browser can take minutes when
    // the 2-core machine is busy (seen at load 15), and a bound hit there is no finding.
    testTimeout: 180_000,
    hookTimeout: 180_000,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
