// The read's ETA on synthetic cost curves with a synthetic clock: within ±25% of the time really
// left from 10% of the read onwards, on long documents where a token's cost grows with the KV rows
// (select, full) and where it stays about flat (beacon, stream).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mulberry32 } from '../../src/demo/rng.js';
import { ReadEta } from '../../src/engine/read-eta.js';

interface Curve {
  /** Tokens in the document (the read's total). */
  total: number;
  /** Tokens per step. */
  step: number;
  /** KV rows held after `done` tokens. */
  rows: (done: number) => number;
  /** Seconds one token costs while `rows` rows are held. */
  cost: (rows: number) => number;
  /** The plan's most rows held. */
  maxRows: number;
}

/** Each step's end: tokens done, rows held, and the synthetic clock; steps cost ±noise at random, the first one 3× (warm-up). */
function simulate(c: Curve, noise: number, seed: number): Array<{ done: number; rows: number; seconds: number }> {
  const rand = mulberry32(seed);
  const out = [];
  let seconds = 0;
  for (let done = 0; done < c.total; ) {
    const n = Math.min(c.step, c.total - done);
    const r0 = c.rows(done);
    const r1 = c.rows(done + n);
    let dt = n * c.cost((r0 + r1) / 2) * (1 + noise * (2 * rand() - 1));
    if (done === 0) dt *= 3;
    done += n;
    seconds += dt;
    out.push({ done, rows: r1, seconds });
  }
  return out;
}

/** The worst |eta / actual − 1| from `from` of the read on, for ReadEta and for "left / average speed". */
function worstError(c: Curve, noise: number, seed: number, from = 0.1): { model: number; naive: number } {
  const steps = simulate(c, noise, seed);
  const end = steps.at(-1)!.seconds;
  const eta = new ReadEta(c.total, c.maxRows);
  let model = 0;
  let naive = 0;
  for (const s of steps) {
    eta.observe(s.done, s.rows, s.seconds);
    if (s.done < from * c.total || s.done === c.total) continue;
    const actual = end - s.seconds;
    model = Math.max(model, Math.abs(eta.remaining() / actual - 1));
    naive = Math.max(naive, Math.abs((c.total - s.done) / (s.done / s.seconds) / actual - 1));
  }
  return { model, naive };
}

const N = 347_000;
// select on the run: ~10K tok/s with an empty KV, ~2K tok/s with 347K rows.
const select: Curve = { total: N, step: 512, rows: (d) => d + 30, cost: (r) => 1e-4 + (4e-4 * r) / N, maxRows: N + 30 + 512 };
// full attention on a long-window model: the same shape of curve, steeper.
const full: Curve = { total: 120_000, step: 512, rows: (d) => d, cost: (r) => 2e-4 + (1.8e-3 * r) / 120_000, maxRows: 120_512 };
// beacon, ratio 8, window 1024: one condensed row per 8 tokens plus the open window; its cost barely moves.
const beacon: Curve = {
  total: N,
  step: 1024,
  rows: (d) => Math.floor(d / 1024) * 128 + (d % 1024),
  cost: (r) => 4e-4 + (2e-5 * r) / (N / 8),
  maxRows: N / 8 + 1024,
};
// stream: the window fills in the first 4K tokens, then nothing grows.
const stream: Curve = { total: N, step: 512, rows: (d) => Math.min(d, 4096), cost: (r) => 3e-4 + (1e-4 * r) / 4096, maxRows: 4096 };

describe('ReadEta', () => {
  for (const [name, curve] of Object.entries({ select, full, beacon, stream })) {
    it(`${name}: within ±25% of the time left from 10% on (several noise draws)`, () => {
      // Each step's time ±15% at random (uniform): more than a quiet machine shows. With ±20% a few
      // draws in 30 end 25–40% off on the steep (full) and the flat-but-growing (beacon) curves.
      for (const noise of [0, 0.05, 0.1, 0.15]) {
        for (const seed of [1, 2, 3, 4, 5]) {
          const { model } = worstError(curve, noise, seed);
          assert.ok(model <= 0.25, `${name}, noise ±${noise * 100}%, seed ${seed}: worst error ${(100 * model).toFixed(1)}%`);
        }
      }
    });
  }

  it('where the cost grows with the rows, "tokens left / average speed" is far off (what ctx printed before)', () => {
    assert.ok(worstError(select, 0.1, 1).naive > 0.5);
    assert.ok(worstError(full, 0.1, 1).naive > 0.5);
  });

  it('is unknown before two steps and 0 at the end', () => {
    const eta = new ReadEta(1000);
    assert.ok(Number.isNaN(eta.remaining()));
    eta.observe(100, 100, 1);
    assert.ok(Number.isNaN(eta.remaining()));
    eta.observe(200, 200, 2);
    assert.ok(Math.abs(eta.remaining() - 8) < 1e-9, 'a flat 0.01 s/token: 800 tokens left take 8 s');
    eta.observe(1000, 1000, 10);
    assert.equal(eta.remaining(), 0);
  });
});
