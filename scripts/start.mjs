// `npm start`: the whole stack in the foreground (see directus/src/dev-stack.mjs).
import { StackError, startDevStack } from '../directus/src/dev-stack.mjs';

/** @type {Awaited<ReturnType<typeof startDevStack>> | undefined} */
let stack;
let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    interrupted = true;
    if (stack) stack.stop(signal);
    else process.exit(130); // still deploying: children get the terminal's signal too
  });
}

try {
  stack = await startDevStack();
  if (interrupted) await stack.stop('interrupted during start-up');
  process.exitCode = await stack.done;
} catch (err) {
  console.error(`\nCannot start Fleet:\n${err instanceof StackError || err instanceof Error ? err.message : err}\n`);
  process.exitCode = 1;
}
