/**
 * Preloaded into the Directus server by `BENCH_PROFILE=1 npm run bench:commands` (NODE_OPTIONS
 * --require): the first SIGUSR2 starts a V8 CPU profile, the second writes it to
 * `<tmpdir>/fleet-directus-<pid>.cpuprofile`, so the bench profiles only its measured phase.
 * (`--cpu-prof` writes nothing when the server is stopped with a signal.)
 */
const { Session } = require('node:inspector');
const { renameSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');

if (process.argv.includes('start')) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  let running = false;
  process.on('SIGUSR2', () => {
    if (!running) {
      session.post('Profiler.start');
      running = true;
      return;
    }
    running = false;
    session.post('Profiler.stop', (err, result) => {
      if (err) return;
      const file = join(tmpdir(), `fleet-directus-${process.pid}.cpuprofile`);
      writeFileSync(`${file}.part`, JSON.stringify(result.profile));
      renameSync(`${file}.part`, file);
    });
  });
}
