/**
 * Child process running one slice of a fleet (see `runFleetInWorkers`): the parent sends the
 * options, this process ramps up its devices, waits for 'go', runs and returns its summary.
 */
import { type FleetProgress, type ParentMessage, runFleet, type WorkerMessage } from './fleet.js';

const send = (m: WorkerMessage, then?: () => void) => process.send?.(m, undefined, {}, () => then?.());
const abort = new AbortController();
let go: () => void = () => {};
const startGate = new Promise<void>((resolve) => {
  go = resolve;
});

process.on('message', (m: ParentMessage) => {
  if (m.type === 'stop') abort.abort();
  else if (m.type === 'go') go();
  else if (m.type === 'start') {
    runFleet({
      ...m.options,
      processes: 1,
      signal: abort.signal,
      startGate,
      onConnected: (progress: FleetProgress) => send({ type: 'connected', progress }),
      onProgress: (progress: FleetProgress) => send({ type: 'progress', progress }),
      progressMs: 1000,
    }).then(
      (summary) => {
        send({ type: 'summary', summary }, () => process.disconnect?.());
      },
      (err: unknown) => {
        send({ type: 'error', message: err instanceof Error ? err.message : String(err) }, () => process.exit(1));
      },
    );
  }
});
// The parent going away (crash, Ctrl-C) ends the slice too.
process.on('disconnect', () => abort.abort());
