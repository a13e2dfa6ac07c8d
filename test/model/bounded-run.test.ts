// Bounded calls leave the process's signal handlers alone unless they are slow: node:vm's
// breakOnSigint removes every SIGINT listener for the call, and a Ctrl-C then killed ctx or was lost.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, it, type TestContext } from 'node:test';
import { loadAddon } from '../../src/backend/native/addon.js';
import { CtxError } from '../../src/errors.js';
import { runBounded, runSlice, SLICE_MS, useSignalCatcher } from '../../src/model/bounded-run.js';

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
      assert.throws(() => runBounded(() => spin(Infinity), SLICE_MS * 2, timeout), /deadline/);
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

describe('with a signal catcher (the native addon\'s in the CLI, a fake here)', () => {
  const isInterrupted = (e: unknown) => e instanceof CtxError && e.kind === 'interrupted';

  /** Keeps the event loop alive while a signal is on its way (signal listeners do not). */
  const awaitSignal = async (heard: () => boolean) => {
    const t0 = performance.now();
    while (!heard() && performance.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
    return heard();
  };

  /** A catcher that reports `noted` (a signal number) at its next release, and logs how it was set. */
  function fakeCatcher() {
    const fake = { modes: [] as string[], noted: 0 };
    useSignalCatcher(() => ({
      hold: () => fake.modes.push('hold'),
      termAsInt: () => fake.modes.push('termAsInt'),
      release: () => {
        const n = fake.noted;
        fake.noted = 0;
        return n;
      },
    }));
    return fake;
  }
  afterEach(() => useSignalCatcher(() => null));

  /** Whether the process has heard SIGTERM since this call (the listener is removed after the test). */
  function hearSigterm(t: TestContext): () => boolean {
    let heard = false;
    const listener = () => (heard = true);
    process.once('SIGTERM', listener);
    t.after(() => process.off('SIGTERM', listener));
    return () => heard;
  }

  it('a slow call runs its second run with SIGTERM sent on as SIGINT', () => {
    const fake = fakeCatcher();
    assert.equal(runBounded(() => (spin(SLICE_MS + 50), 'done'), 10_000, timeout), 'done');
    assert.deepEqual(fake.modes, ['hold', 'termAsInt']);
  });

  it('a signal noted in the first slice ends a slow call there (not run again) and is raised again for the process', async (t) => {
    const fake = fakeCatcher();
    const heard = hearSigterm(t);
    let runs = 0;
    const slow = () => {
      runs++;
      fake.noted = 15;
      spin(SLICE_MS + 50);
    };
    assert.throws(() => runBounded(slow, 10_000, timeout), isInterrupted);
    assert.equal(runs, 1);
    assert.deepEqual(fake.modes, ['hold']);
    assert.ok(await awaitSignal(heard), 'the process heard SIGTERM');
    assert.throws(() => runSlice(() => 1, 10_000, timeout), isInterrupted, 'later calls stop at once');
  });

  it('a signal noted during a fast call: its result, the signal raised again at once, later calls stop at once', async (t) => {
    const fake = fakeCatcher();
    const heard = hearSigterm(t);
    assert.equal(runBounded(() => ((fake.noted = 15), 'result'), 10_000, timeout), 'result');
    assert.throws(() => runBounded(() => (spin(SLICE_MS * 4), 'never'), 60_000, timeout), isInterrupted);
    assert.ok(await awaitSignal(heard), 'the process heard SIGTERM');
  });
});

describe('a signal that lands just before a call starts (the native addon\'s catcher)', () => {
  // Node queues it for the event loop, which a synchronous call does not return to: the call ran
  // to its deadline (5 s here) before the process's listener heard it.
  const skip = loadAddon()?.signals?.heard ? false : 'the native addon (with its signal handlers) is not built: npm run build:native';
  const child = fileURLToPath(new URL('./bounded-run.child.ts', import.meta.url));
  for (const when of ['fresh', 'after-a-slow-call']) {
    it(`stops the call before it starts (${when})`, { skip }, () => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', child, when], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout) as { ended: string; ms: number };
      assert.equal(out.ended, 'interrupted');
      assert.ok(out.ms < 200, `${out.ms} ms`);
    });
  }
});
