// TokenSelect's selection rule (contract.ts, SelectSpec), shared by the TypeScript backends.
// Inputs are per layer: the mean query q̄ [Hq, D] (already rotated at nLocal + i and averaged)
// and the stored pre-RoPE keys [T, Hkv, D].

import type { SelectSpec } from './contract.js';

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
 * The soft vote over candidates [nInit, localStart):
 *   s_h = softmax_j(q̄_h · K[j, h / group])  (no 1/√D),  vote_j = Σ_h s_h[j]
 * Returns the topK candidates with the largest vote (ties → lower index), ascending.
 */
export function topKBySoftVote(
  qbar: Float32Array,
  keys: Float32Array,
  numHeads: number,
  numKvHeads: number,
  headDim: number,
  nInit: number,
  localStart: number,
  topK: number,
): Int32Array {
  const nc = localStart - nInit;
  const kvDim = numKvHeads * headDim;
  const group = numHeads / numKvHeads;
  const vote = new Float64Array(nc);
  const s = new Float64Array(nc);
  for (let h = 0; h < numHeads; h++) {
    const kvOff = Math.floor(h / group) * headDim;
    const qOff = h * headDim;
    let m = -Infinity;
    for (let j = 0; j < nc; j++) {
      const ko = (nInit + j) * kvDim + kvOff;
      let dot = 0;
      for (let d = 0; d < headDim; d++) dot += qbar[qOff + d] * keys[ko + d];
      s[j] = dot;
      if (dot > m) m = dot;
    }
    let sum = 0;
    for (let j = 0; j < nc; j++) {
      s[j] = Math.exp(s[j] - m);
      sum += s[j];
    }
    for (let j = 0; j < nc; j++) vote[j] += s[j] / sum;
  }
  return topKIndices(vote, Math.min(topK, nc), nInit);
}

/** Indices (offset by `base`) of the k largest values, ties broken by lower index, sorted ascending. */
export function topKIndices(values: Float64Array | Float32Array, k: number, base = 0): Int32Array {
  const order = Array.from({ length: values.length }, (_, i) => i);
  order.sort((a, b) => values[b] - values[a] || a - b);
  const top = Int32Array.from(order.slice(0, k), (i) => i + base);
  return top.sort();
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
