// Bounded calls leave the process's signal handlers alone unless they are slow: node:vm's
// breakOnSigint removes every SIGINT listener for the call, and a Ctrl-C then killed ctx or was lost.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runBounded, runSlice, SLICE_MS } from '../../src/model/bounded-run.js';

const timeout = () => new Error('deadline');

/** Busy for `ms` milliseconds. */
function spin(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

describe('runBounded', () => {
  const listener = () => {};

  it('runs a fast call with the process\'s SIGINT listeners in place', () => {
    process.on('SIGINT', listener);
    try {
      const seen = new Set<number>();
      for (let i = 0; i < 200; i++) seen.add(runBounded(() => process.listenerCount('SIGINT'), 10_000, timeout));
      assert.deepEqual([...seen], [process.listenerCount('SIGINT')]);
    } finally {
      process.off('SIGINT', listener);
    }
  });

  it('runs a call slower than the slice again, with breakOnSigint, within the same deadline', () => {
    process.on('SIGINT', listener);
    try {
      const runs: number[] = [];
      const t0 = performance.now();
      const r = runBounded(() => (runs.push(process.listenerCount('SIGINT')), spin(SLICE_MS + 100), 'done'), 10_000, timeout);
      assert.equal(r, 'done');
      assert.deepEqual(runs, [process.listenerCount('SIGINT'), 0], 'the second run is node:vm\'s, without the listeners');
      assert.ok(performance.now() - t0 < 3 * SLICE_MS + 1000);
      assert.throws(() => runBounded(() => spin(SLICE_MS * 4), SLICE_MS * 2, timeout), /deadline/);
    } finally {
      process.off('SIGINT', listener);
    }
  });
});

describe('runSlice', () => {
  it('gives a fast call\'s result, null for a slow one, and the deadline\'s error when that is shorter than the slice', () => {
    assert.equal(runSlice(() => 7, 10_000, timeout), 7);
    assert.equal(runSlice(() => spin(SLICE_MS * 3), 10_000, timeout), null);
    assert.throws(() => runSlice(() => spin(SLICE_MS), SLICE_MS / 5, timeout), /deadline/);
  });
});
