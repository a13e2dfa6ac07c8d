// A process with the CLI's signal setup (listeners, then the native addon's catcher) that sends itself
// SIGTERM just before a bounded call that never ends, for bounded-run.test.ts. Prints one JSON line:
// how the call ended and how long it took.
//   node --import tsx test/model/bounded-run.child.ts <fresh|after-a-slow-call>
//     fresh              the first bounded call of the process
//     after-a-slow-call  after a call that took its second run (breakOnSigint gave libuv's handler back)
import { loadAddon } from '../../src/backend/native/addon.js';
import { runBounded, SLICE_MS, signalHeard, useSignalCatcher } from '../../src/model/bounded-run.js';

const spin = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};
const deadline = () => new Error('deadline');

process.on('SIGTERM', signalHeard);
useSignalCatcher(() => loadAddon()?.signals ?? null);
if (process.argv[2] === 'after-a-slow-call') runBounded(() => spin(SLICE_MS + 100), 10_000, deadline);
process.kill(process.pid, 'SIGTERM');
// The signal has landed and waits for the event loop, which the call below does not return to.
spin(50);
const t0 = performance.now();
let ended: string;
try {
  runBounded(() => spin(Infinity), 5_000, deadline);
  ended = 'returned';
} catch (e) {
  ended = (e as Error).message;
}
process.stdout.write(`${JSON.stringify({ ended, ms: Math.round(performance.now() - t0) })}\n`);
