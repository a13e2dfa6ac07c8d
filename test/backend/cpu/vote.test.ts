// TokenSelect's soft vote on the cpu backend (src/backend/cpu/vote.ts): the native loop
// (native/src/select_kernels.cc) picks the same rows as the reference's float64 loop (reference/
// math.ts softVoteTopK, the plain TypeScript computation) and as the ONNX Runtime graph, with f16
// and f32 keys, on its wide (D a multiple of 8) and plain (other D) paths, on one and two threads.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import type * as ortTypes from 'onnxruntime-node';
import type { KvRows } from '../../../src/backend/contract.js';
import { nativeLoops } from '../../../src/backend/cpu/native-loops.js';
import { loadOrt, type Ort } from '../../../src/backend/cpu/sessions.js';
import { buildVoteGraph, topBySoftVote } from '../../../src/backend/cpu/vote.js';
import { softVoteTopK } from '../../../src/backend/reference/math.js';
import type { ModelConfig } from '../../../src/model/config.js';
import { mulberry32 } from '../../../src/demo/rng.js';
import { randomHeads } from './helpers.js';

const native = nativeLoops(2);
const skip = native ? false : 'the native addon is absent or built without softVoteTopK (npm run build:native)';

/** The fields of a model's config the vote reads. */
const config = (Hq: number, Hkv: number, D: number) => ({ numHeads: Hq, numKvHeads: Hkv, headDim: D }) as ModelConfig;

/** Per-head [rows, D] arrays interleaved as the reference reads keys: [rows, Hkv·D]. */
function interleaved(heads: Float32Array[], rows: number, D: number): Float32Array {
  const out = new Float32Array(rows * heads.length * D);
  for (let r = 0; r < rows; r++) heads.forEach((h, g) => out.set(h.subarray(r * D, (r + 1) * D), (r * heads.length + g) * D));
  return out;
}

function randomQuery(Hq: number, D: number, seed: number): Float32Array {
  const rng = mulberry32(seed);
  return Float32Array.from({ length: Hq * D }, () => rng() * 2 - 1);
}

describe('the native soft vote', { skip }, () => {
  let ort: Ort;
  const sessions = new Map<string, ortTypes.InferenceSession>();
  before(async () => {
    ort = await loadOrt();
  });
  /** The vote graph's session for this shape and dtype. */
  async function graph(c: ModelConfig, dtype: 'f16' | 'f32'): Promise<ortTypes.InferenceSession> {
    const key = `${c.numHeads}/${c.numKvHeads}/${c.headDim}/${dtype}`;
    if (!sessions.has(key)) sessions.set(key, await ort.InferenceSession.create(buildVoteGraph(c, dtype)));
    return sessions.get(key)!;
  }

  const cases: Array<[string, number, number, number, 'f16' | 'f32', number, number, number, number]> = [
    // name, Hq, Hkv, D, dtype, rows, from, to, k
    ['Qwen2.5-0.5B heads (14/2, D 64), f16, two threads', 14, 2, 64, 'f16', 9000, 4, 8990, 700],
    ['Qwen2.5-0.5B heads, f32, one thread (few candidates)', 14, 2, 64, 'f32', 1500, 4, 1490, 120],
    ['D 12 (the plain loop), f16, two threads', 6, 2, 12, 'f16', 6000, 0, 6000, 333],
    ['D 12, f32, 9 query heads per KV head (more than one block of 8)', 9, 1, 12, 'f32', 500, 3, 497, 40],
    ['D 80 (Phi), 32 heads on 32 KV heads, f16', 32, 32, 80, 'f16', 700, 1, 699, 64],
    ['candidate count not a multiple of 8', 14, 2, 64, 'f16', 4999, 2, 4995, 1001],
  ];
  for (const [name, Hq, Hkv, D, dtype, rows, from, to, k] of cases) {
    it(`${name}: the reference's rows and the graph's`, async () => {
      const keys = randomHeads(Hkv, rows, D, dtype, rows + D);
      const qbar = randomQuery(Hq, D, Hq * 31 + D);
      const c = config(Hq, Hkv, D);
      const got = native!.softVoteTopK(qbar, keys.stored, D, from, to, k, 2);
      assert.equal(got.length, k);
      assert.deepEqual(got, softVoteTopK(qbar, interleaved(keys.values, rows, D), Hq, Hkv, D, from, to, k), 'the reference');
      assert.deepEqual(got, await topBySoftVote(ort, await graph(c, dtype), c, qbar, keys.stored, from, to, k), 'the ORT graph');
      // The backend's entry point with the native loop gives the same.
      assert.deepEqual(await topBySoftVote(ort, await graph(c, dtype), c, qbar, keys.stored, from, to, k, native), got);
    });
  }

  it('ties go to the lower row: equal keys, equal votes', () => {
    const D = 64;
    const rows = 5000;
    // Rows repeat with period 10: every vote appears rows/10 times; the top 25 are the first of them.
    const base = randomHeads(2, 10, D, 'f16', 5);
    const repeat = <T extends Uint16Array | Float32Array>(h: T, make: (n: number) => T): T => {
      const a = make(rows * D);
      for (let r = 0; r < rows; r++) a.set(h.subarray((r % 10) * D, (r % 10 + 1) * D), r * D);
      return a;
    };
    const keys = base.stored.map((h) => repeat(h as Uint16Array, (n) => new Uint16Array(n)));
    const asFloat = base.values.map((h) => repeat(h, (n) => new Float32Array(n)));
    const qbar = randomQuery(14, D, 6);
    const got = native!.softVoteTopK(qbar, keys, D, 0, rows, 25, 2);
    assert.deepEqual(got, softVoteTopK(qbar, interleaved(asFloat, rows, D), 14, 2, D, 0, rows, 25));
    // Every row of the best residue class, ascending: rows best, best + 10, … (25 of the 500).
    assert.ok(got.every((r, i) => r === got[0] + 10 * i));
    // All keys equal: the first k rows.
    const flat = [new Uint16Array(rows * D).fill(0x3c00), new Uint16Array(rows * D).fill(0x3c00)];
    assert.deepEqual(native!.softVoteTopK(qbar, flat, D, 3, rows, 7, 2), Int32Array.from({ length: 7 }, (_, i) => 3 + i));
  });

  it('k ≥ the candidates: every candidate; k = 0 or no candidate: none', () => {
    const keys = randomHeads(2, 100, 64, 'f16', 9).stored;
    const qbar = randomQuery(14, 64, 10);
    assert.deepEqual(native!.softVoteTopK(qbar, keys, 64, 10, 40, 30, 2), Int32Array.from({ length: 30 }, (_, i) => 10 + i));
    assert.deepEqual(native!.softVoteTopK(qbar, keys, 64, 10, 40, 500, 2), Int32Array.from({ length: 30 }, (_, i) => 10 + i));
    assert.deepEqual(native!.softVoteTopK(qbar, keys, 64, 10, 40, 0, 2), new Int32Array(0));
    assert.deepEqual(native!.softVoteTopK(qbar, keys, 64, 40, 40, 5, 2), new Int32Array(0));
  });

  it('refuses arrays shorter than the candidates and a q̄ that is not Hq·D', () => {
    const keys: KvRows[] = randomHeads(2, 100, 64, 'f32', 11).stored;
    assert.throws(() => native!.softVoteTopK(randomQuery(14, 64, 1), keys, 64, 0, 101, 5, 1), /fewer rows/);
    assert.throws(() => native!.softVoteTopK(new Float32Array(14 * 64 + 1), keys, 64, 0, 100, 5, 1), /Hq·D/);
    assert.throws(() => native!.softVoteTopK(randomQuery(14, 64, 1), [keys[0], new Uint16Array(6400)], 64, 0, 100, 5, 1), /mixes/);
  });
});
