// TokenSelect's decisions (src/backend/step/select.ts): the selected set, reuse of a layer's
// selection, its reset on retain and its snapshot. Against brute force on a real model:
// test/engine/select.test.ts; across backends: test/backend/{cpu,native}.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RopeTables } from '../../../src/backend/step/rope.js';
import { meanRotatedQuery, selectedSet, selectionBounds, TokenSelector } from '../../../src/backend/step/select.js';

const spec = (reuseCosine: number | null) => ({ nInit: 2, topK: 3, nLocal: 4, reuseCosine });

describe('TokenSelector', () => {
  it('votes, then reuses the layer\'s top while q̄ stays similar, within the new candidates', async () => {
    const sel = new TokenSelector(2);
    const calls: Array<[number, number, number]> = [];
    const vote = (from: number, to: number, k: number) => {
      calls.push([from, to, k]);
      return Int32Array.of(3, 7, to - 1);
    };
    const q = Float32Array.of(1, 2, 3);
    const S = await sel.select(0, q, spec(0.9), 20, 24, vote);
    assert.deepEqual(calls, [[2, 20, 3]]);
    assert.deepEqual([...S], [0, 1, 3, 7, 19, 20, 21, 22, 23]);
    // Similar q̄, a step later: no vote; the cached top is kept where it is still a candidate.
    const S2 = await sel.select(0, Float32Array.of(1, 2, 3.1), spec(0.9), 4, 8, vote);
    assert.equal(calls.length, 1);
    assert.deepEqual([...S2], [0, 1, 3, 4, 5, 6, 7], 'top 7 and 19 are now local or beyond: dropped from top');
    // Another layer has its own cache; a dissimilar q̄ votes again.
    await sel.select(1, q, spec(0.9), 20, 24, vote);
    await sel.select(0, Float32Array.of(-1, 0, 0), spec(0.9), 20, 24, vote);
    assert.equal(calls.length, 3);
  });

  it('never reuses without a threshold, nor after a retain', async () => {
    const sel = new TokenSelector(1);
    let votes = 0;
    const vote = () => (votes++, Int32Array.of(5, 6, 7));
    const q = Float32Array.of(1, 0);
    await sel.select(0, q, spec(null), 20, 24, vote);
    await sel.select(0, q, spec(null), 20, 24, vote);
    assert.equal(votes, 2);
    await sel.select(0, q, spec(-1), 20, 24, vote);
    assert.equal(votes, 2, 'cos ≥ −1 always holds: reused');
    sel.reset();
    await sel.select(0, q, spec(-1), 20, 24, vote);
    assert.equal(votes, 3, 'a retain drops the cache');
  });

  it('a snapshot carries the cache; restore copies it', async () => {
    const sel = new TokenSelector(2);
    await sel.select(1, Float32Array.of(1, 2), spec(0.5), 20, 24, () => Int32Array.of(4, 5, 6));
    const snap = sel.snapshot();
    assert.equal(snap[0], null);
    assert.deepEqual([...snap[1]!.top], [4, 5, 6]);
    const other = new TokenSelector(2);
    other.restore(snap);
    snap[1]!.top[0] = 99;
    let voted = false;
    const S = await other.select(1, Float32Array.of(1, 2), spec(0.5), 20, 24, () => ((voted = true), Int32Array.of()));
    assert.ok(!voted);
    assert.deepEqual([...S.subarray(2, 5)], [4, 5, 6]);
    other.restore(undefined);
    assert.deepEqual(other.snapshot(), [null, null]);
  });
});

describe('selection bounds and sets', () => {
  it('the local window covers the step\'s rows; init + top + local ≥ T selects all', () => {
    assert.deepEqual(selectionBounds(100, 1, spec(null)), { localStart: 96, all: false });
    assert.deepEqual(selectionBounds(100, 10, spec(null)), { localStart: 90, all: false });
    assert.deepEqual(selectionBounds(9, 1, spec(null)), { localStart: 5, all: true });
    assert.deepEqual([...selectedSet(2, Int32Array.of(5, 8), 10, 12)], [0, 1, 5, 8, 10, 11]);
  });

  it('q̄ is the mean of the queries rotated at posStart + i, scale 1', () => {
    const D = 4;
    const rope = new RopeTables(D);
    rope.use({ invFreq: Float32Array.of(1, 0.1), scale: 3 }, 20);
    const q = Float32Array.of(1, 2, 3, 4, /* row 1 */ -1, 0, 1, 0);
    const got = meanRotatedQuery(q, 4, 2, 1, rope, 10);
    const want = new Float32Array(4);
    for (let i = 0; i < 2; i++) {
      const r = new Float32Array(4);
      rope.rotate(q, i * 4, r, 0, 1, 10 + i, 1);
      for (let d = 0; d < 4; d++) want[d] += r[d] / 2;
    }
    assert.deepEqual(got, want);
  });
});
