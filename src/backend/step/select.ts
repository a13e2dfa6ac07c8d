// TokenSelect's selection (contract.ts, SelectSpec; ALGORITHMS.md §2), decided once for every
// backend. Per layer and step:
//   local  = [T − max(nLocal, n), T)       cands = [nInit, local start)
//   q̄      = mean over the new rows i of RoPE(q_i, nLocal + i)      (the backend computes it)
//   top    = the cached top of this layer when reuse is allowed and cos(q̄, cached q̄) ≥ reuseCosine,
//            else the topK candidates by soft vote                   (the backend computes the vote)
//   S      = [0, nInit) ∪ top ∪ local, ascending
// A backend computes q̄ and the vote its own way (loops, ONNX Runtime, kernels); TokenSelector
// decides reuse, keeps the per-layer cache (dropped on retain, carried by snapshots) and forms S.

import type { SequenceSnapshot, SelectSpec } from '../contract.js';
import type { RopeTables } from './rope.js';

export interface SelectionBounds {
  /** First row of the local window (covers the step's own rows). */
  localStart: number;
  /** True when init + topK + local cover every row: attend to all, positions = index. */
  all: boolean;
}

export function selectionBounds(T: number, n: number, spec: SelectSpec): SelectionBounds {
  const localStart = Math.max(0, T - Math.max(spec.nLocal, n));
  return { localStart, all: spec.nInit + spec.topK + (T - localStart) >= T };
}

/**
 * The k candidates in [from, to) with the largest soft vote of the layer's q̄ (ties to the lower
 * index), as ascending row indices. How the vote is computed is the backend's.
 */
export type Vote = (from: number, to: number, k: number) => Int32Array | Promise<Int32Array>;

type CacheEntry = SequenceSnapshot['selectCache'][number];

/** A sequence's TokenSelect state: the last fresh selection of each layer and its q̄. */
export class TokenSelector {
  private cache: CacheEntry[];
  /** Layer selections made so far: by a fresh vote, or by reusing the cached one (benchmarks, tests). */
  voted = 0;
  reused = 0;

  constructor(private readonly layers: number) {
    this.cache = Array.from({ length: layers }, () => null);
  }

  /** S for `layer` of a step with these bounds, given the layer's q̄ [Hq·D]. */
  async select(layer: number, qbar: Float32Array, spec: SelectSpec, localStart: number, T: number, vote: Vote): Promise<Int32Array> {
    const cached = this.cache[layer];
    let top: Int32Array;
    if (spec.reuseCosine !== null && cached && cosine(qbar, cached.qbar) >= spec.reuseCosine) {
      top = cached.top.filter((j) => j >= spec.nInit && j < localStart);
      this.reused++;
    } else {
      top = await vote(spec.nInit, localStart, spec.topK);
      this.cache[layer] = { qbar, top };
      this.voted++;
    }
    return selectedSet(spec.nInit, top, localStart, T);
  }

  /** Cached selections index rows that may have moved: a retain drops them (strategies that retain never reuse). */
  reset(): void {
    this.cache = this.cache.map(() => null);
  }

  snapshot(): CacheEntry[] {
    return this.cache.map((e) => (e ? { qbar: e.qbar.slice(), top: e.top.slice() } : null));
  }

  restore(cache: CacheEntry[] | undefined): void {
    this.cache = Array.from({ length: this.layers }, (_, l) => {
      const e = cache?.[l];
      return e ? { qbar: e.qbar.slice(), top: e.top.slice() } : null;
    });
  }
}

/**
 * q̄ [Hq·D] = mean over the n rows of q (row i at q[i·stride], Hq heads of D values, pre-RoPE),
 * each rotated at posStart + i with scale 1, accumulated in float32 — for backends that compute
 * in TypeScript.
 */
export function meanRotatedQuery(q: Float32Array, stride: number, n: number, heads: number, rope: RopeTables, posStart: number): Float32Array {
  const qDim = heads * rope.headDim;
  const qbar = new Float32Array(qDim);
  const qi = new Float32Array(qDim);
  for (let i = 0; i < n; i++) {
    rope.rotate(q, i * stride, qi, 0, heads, posStart + i, 1);
    for (let d = 0; d < qDim; d++) qbar[d] += qi[d] / n;
  }
  return qbar;
}

/** cos(a, b) of two flat vectors. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / (Math.sqrt(aa * bb) || 1);
}

/** S = [0, nInit) ∪ top ∪ [localStart, T), ascending. */
export function selectedSet(nInit: number, top: Int32Array, localStart: number, T: number): Int32Array {
  const out = new Int32Array(nInit + top.length + (T - localStart));
  let k = 0;
  for (let j = 0; j < nInit; j++) out[k++] = j;
  for (const j of top) out[k++] = j;
  for (let j = localStart; j < T; j++) out[k++] = j;
  return out;
}
