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
// Proposed rule under `stream` and `select` (issue 18; the paper defines neither): n is the number
// of keys the query actually sees (sinks + window for stream; the selected keys plus the local window
// for select; beacons + raw rows for beacon), never its position + 1. Two reasons:
//   1. Re-weighting keeps the keys above the row's uniform share. n·a_j − 1 > 0 means a_j > 1/n,
//      which is "above average" only when n is the number of keys the a_j are spread over. With
//      n = position + 1 > visible keys m, the threshold 1/n falls below the average 1/m and almost
//      every key survives: the sharpening the paper relies on is switched off.
//   2. The temperature ln(D)·ln(n) is there to keep the row's entropy from growing with the number
//      of competing keys; a key the query cannot see does not compete. The cost: a stream or select
//      model's temperature stops growing at its key budget, so it behaves as the model did at that
//      length (within its training range, which is what those strategies are for).
// Backends apply it by passing exactly the visible scores; nothing here knows positions.

import { CtxError } from '../errors.js';

type Json = Record<string, unknown>;

/** The re-weighting stage (LSSAR). */
export interface SoftplusReweight {
  /** Power p (the paper: 3 best at the training length, 15 best beyond it). */
  p: number;
  /** Offset o subtracted from n·a (the paper: 1, the uniform share). */
  offset: number;
  /** Rows with n ≤ this many keys use offset 0 (the paper: 3; with offset 1 row 0 would be 0/0). */
  noOffsetFirstRows: number;
}

export interface SoftplusAttention {
  /** The only scale the paper defines: ln(head_dim)·ln(n). */
  scale: 'log_head_dim_x_log_n';
  /** null = LSSA; otherwise LSSAR. */
  reweight: SoftplusReweight | null;
}

/**
 * Reads the four config keys. Returns null for softmax models (no `attention_type`, or "softmax").
 * `softplus_qk_norm: false` is refused: the paper's scale assumes cosine similarities in [−1, 1],
 * and nothing defines softplus attention on raw dot products.
 */
export function parseSoftplusAttention(cfg: Json, path: string): SoftplusAttention | null {
  const type = cfg.attention_type;
  if (type === undefined || type === null || type === 'softmax') return null;
  const bad = (what: string): never => {
    throw new CtxError('model', `config.json ${what}`, { path });
  };
  if (type !== 'softplus') bad(`"attention_type" ${JSON.stringify(type)} is not supported (ctx runs "softmax" and "softplus")`);
  const scale = 'log_head_dim_x_log_n';
  const given = cfg.softplus_scale ?? scale;
  if (given !== scale) bad(`"softplus_scale" ${JSON.stringify(given)} is not supported (ctx runs "${scale}")`);
  const qkNorm = cfg.softplus_qk_norm ?? true;
  if (qkNorm !== true) bad('"softplus_qk_norm" must be true: softplus attention is defined on cosine similarities');
  const rw = cfg.softplus_reweight;
  if (rw === undefined || rw === null) return { scale, reweight: null };
  if (typeof rw !== 'object' || Array.isArray(rw)) bad('"softplus_reweight" must be null or {"p", "offset", "no_offset_first_rows"}');
  const r = rw as Json;
  const p = r.p;
  if (typeof p !== 'number' || !(p > 0 && p <= 1000)) bad(`"softplus_reweight.p" must be a positive number, got ${JSON.stringify(p)}`);
  const offset = r.offset ?? 1;
  if (typeof offset !== 'number' || !(offset >= 0 && Number.isFinite(offset))) bad(`"softplus_reweight.offset" must be a number ≥ 0, got ${JSON.stringify(offset)}`);
  const first = r.no_offset_first_rows ?? 3;
  if (typeof first !== 'number' || !Number.isInteger(first) || first < 0) bad(`"softplus_reweight.no_offset_first_rows" must be a count, got ${JSON.stringify(first)}`);
  return { scale, reweight: { p: p as number, offset: offset as number, noOffsetFirstRows: first as number } };
}

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
