// Build plugins for the bundle. maplibre-gl 6 starts its worker from a separate file, which the
// single-file extension build cannot emit; copy that file next to api.js so the `fleet` endpoint
// can serve it same-origin (the map panel points setWorkerUrl() at it).
import { copyFile, mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));

function copyMaplibreWorker() {
  return {
    name: 'fleet-copy-maplibre-worker',
    async writeBundle() {
      const source = join(dirname(require.resolve('maplibre-gl/package.json')), 'dist', 'maplibre-gl-worker.mjs');
      await mkdir(join(here, 'dist'), { recursive: true });
      await copyFile(source, join(here, 'dist', 'maplibre-gl-worker.mjs'));
    },
  };
}

export default {
  plugins: [copyMaplibreWorker()],
};
