// Softplus attention (arXiv 2501.13428; ../shared/research/SOFTPLUS.md): the attention-probability
// function that replaces softmax in every layer of a model whose config says
// `attention_type: "softplus"`. Per query row and head, over the n keys the row attends to:
//
//   c_j = (q/‖q‖)·(k_j/‖k_j‖)                   cosine similarity (qk-norm), q and k after RoPE
//   a_j = softplus(ln(D)·ln(n)·c_j) / Σ_j …      LSSA: length-scaled softplus, l1-normalised
//   LSSAR only (re-weighting with power p, offset o, first r0 rows without offset):
//   x_j = max(0, n·a_j − o_n)                    o_n = 0 while n ≤ r0, else o
//   w_j = (x_j/x_max)^p / Σ_j (x_j/x_max)^p       the same value as x^p / Σ x^p, without overflow
//   out = Σ_j w_j·v_j
//
// No epsilon in either denominator (the equations have none and the golden cases use none: with
// p = 15 an epsilon of 1e-8 moves logits by up to 8). No 1/√D anywhere. D is the head dimension.
//
// Which n: the number of keys the row's weights are normalised over, i.e. the count of scores the
// backend passes in. In plain causal attention that is the query's position + 1 for every row of a
// prefill and every decode step, so a one-call prefill and token-by-token decoding agree; it is the
// definition the golden cases use.
//
// The rule under `stream`, `select`, `beacon` and `focus` (issue 18; the paper defines none of
// them): n is the number of keys the query actually sees (sinks + recent window for stream; the
// init, top-k and local keys of its layer's selection for select; memory and raw rows its mask
// shows for beacon; its chunk's rows, or the candidates and local rows, for focus), never its place
// in the document (tokens read before it + 1). Three reasons:
//   1. Re-weighting keeps the keys above the row's uniform share. n·a_j − 1 > 0 means a_j > 1/n,
//      which is "above average" only when n is the number of keys the a_j are spread over. With
//      n = document position + 1 > visible keys m, the threshold 1/n falls below the average 1/m
//      and almost every key survives: the sharpening the paper relies on is switched off.
//   2. The temperature ln(D)·ln(n) is there to keep the row's entropy from growing with the number
//      of competing keys; a key the query cannot see does not compete.
//   3. It agrees with the positions ctx gives. Stream numbers the kept rows by cache index and
//      select numbers the selected ones by rank, so for their causal steps the keys a query sees
//      are exactly its RoPE position + 1: the query sits where plain decoding of that many tokens
//      would put it, with the temperature plain decoding would give it there. The document
//      position would pair a RoPE position the model knows with a temperature it never saw with it.
// The cost: a stream or select model's temperature stops growing at its key budget, so it behaves
// as the model did at that length (within its training range, which is what those strategies are
// for); the extrapolation the paper measures is `full` attention's. A backend never needs a
// position for this: test/backend/softplus-key-count.test.ts checks both backends against an
// independent decoder with each rule (they match the "keys seen" rule to 2e-5 and differ from the
// other by 1 to 7 logits).
// Backends apply it by passing exactly the visible scores; nothing here knows positions.

import type { SoftplusAttention, SoftplusReweight } from '../model/softplus-config.js';

/** The softplus temperature for a row over n keys: ln(D)·ln(n) (0 for n = 1). */
export function softplusLengthScale(headDim: number, n: number): number {
  return Math.log(headDim) * Math.log(n);
}

/** ln(1 + eᶻ) without overflow or cancellation. */
export function softplus(z: number): number {
  return Math.max(z, 0) + Math.log1p(Math.exp(-Math.abs(z)));
}

/** (a/‖a‖)·(b/‖b‖) of two D-vectors; 0 when either is the zero vector. */
export function cosineSimilarity(a: ArrayLike<number>, aOffset: number, b: ArrayLike<number>, bOffset: number, D: number): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let d = 0; d < D; d++) {
    const x = a[aOffset + d];
    const y = b[bOffset + d];
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
}

/**
 * LSSA in place: v[0..n) holds the row's cosine similarities and becomes its weights. n is the
 * number of keys the row attends to (see the rule above).
 */
export function lssaInPlace(v: Float64Array | Float32Array, n: number, headDim: number): void {
  const s = softplusLengthScale(headDim, n);
  let sum = 0;
  for (let j = 0; j < n; j++) {
    v[j] = softplus(s * v[j]);
    sum += v[j];
  }
  // Every term is > 0, so sum > 0: no epsilon needed (or wanted).
  for (let j = 0; j < n; j++) v[j] /= sum;
}

/**
 * LSSAR's second stage in place: v[0..n) holds LSSA weights and becomes the re-weighted ones.
 * An exactly uniform row past the offset-free rows has every x = 0 (the formula's 0/0); it stays
 * uniform, the limit of sharpening a row with no key above the others.
 */
export function reweightInPlace(v: Float64Array | Float32Array, n: number, rw: SoftplusReweight): void {
  const o = n <= rw.noOffsetFirstRows ? 0 : rw.offset;
  let xMax = 0;
  for (let j = 0; j < n; j++) {
    const x = n * v[j] - o;
    v[j] = x > 0 ? x : 0;
    if (v[j] > xMax) xMax = v[j];
  }
  if (xMax === 0) {
    for (let j = 0; j < n; j++) v[j] = 1 / n;
    return;
  }
  let sum = 0;
  for (let j = 0; j < n; j++) {
    v[j] = v[j] === 0 ? 0 : Math.pow(v[j] / xMax, rw.p);
    sum += v[j];
  }
  // sum ≥ 1 (the largest key contributes exactly 1): no epsilon, no overflow, no 0/0.
  for (let j = 0; j < n; j++) v[j] /= sum;
}

/**
 * Softplus attention weights in place: v[0..n) holds the cosine similarities of one query head
 * with the n keys it attends to, and becomes the weights that multiply their values.
 */
export function softplusWeightsInPlace(v: Float64Array | Float32Array, n: number, headDim: number, sp: SoftplusAttention): void {
  lssaInPlace(v, n, headDim);
  if (sp.reweight) reweightInPlace(v, n, sp.reweight);
}

/** x[offset .. offset + D) scaled to unit length in place (a zero vector stays zero). */
export function toUnitLength(x: Float32Array, offset: number, D: number): void {
  let ss = 0;
  for (let d = 0; d < D; d++) ss += x[offset + d] * x[offset + d];
  if (ss === 0) return;
  const inv = 1 / Math.sqrt(ss);
  for (let d = 0; d < D; d++) x[offset + d] *= inv;
}
