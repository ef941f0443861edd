// `npm start`: the whole stack in the foreground (see directus/src/dev-stack.mjs).
import { StackError, startDevStack } from '../directus/src/dev-stack.mjs';

try {
  const stack = await startDevStack();
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => stack.stop(signal));
  process.exitCode = await stack.done;
} catch (err) {
  if (err instanceof StackError) {
    console.error(`\nCannot start Fleet:\n${err.message}\n`);
  } else {
    console.error(`\nCannot start Fleet: ${err instanceof Error ? err.message : err}\n`);
  }
  process.exitCode = 1;
}
