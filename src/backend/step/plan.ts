// What a step computes, decided once for every backend: the request checked against the sequence
// and the model, and which keys each new row attends to, at which RoPE positions.
//
// Keys in play. A layer's attention runs over a list of keys: all T = M + n rows of the sequence
// (dense steps), or the rows a TokenSelect selection S gathers (contract.ts, SelectSpec). Within
// that list the step's own n rows come last, from `firstNew` on, and
//   - a key before firstNew sits at its index in the list (stored rows: their storage index;
//     selected rows: their rank in S — the compact re-numbering);
//   - the new rows' queries and keys sit at `positions` (the request's, or ranks for a selection);
//   - row i sees keys [0, firstNew + i] (causal), or the request's `ranges` (dense steps only).
// The reference, cpu and native backends all attend over LayerKeys; none re-derives them.

import type { Model } from '../../model/model.js';
import type { SelectSpec, StepRequest } from '../contract.js';
import { selectionBounds } from './select.js';

export interface LayerKeys {
  /** Rows gathered for the layer's attention (ascending indices into [stored ; new]); null = all T rows. */
  rows: Int32Array | null;
  /** Keys in play: rows.length, or T. */
  count: number;
  /** Index (among the keys in play) of the step's first new row; the new rows are the last n. */
  firstNew: number;
  /** [n] RoPE positions of the new rows' queries and keys. */
  positions: Int32Array;
  /**
   * causal: row i sees keys [0, firstNew + i]. ranges: row i sees the union of the half-open
   * ranges[6i .. 6i+5] (contract.ts, MaskSpec); lo/hi bound every range (rows = null only).
   */
  mask: { kind: 'causal' } | { kind: 'ranges'; ranges: Int32Array; lo: number; hi: number };
}

export interface StepPlan {
  n: number;
  /** Rows stored before the step. */
  M: number;
  T: number;
  /** [n] 1 for a row that uses the beacon projections, or null when there is none. */
  beacon: Uint8Array | null;
  /** [n] 1 for a row whose input is the beacon embedding, or null when there is none. */
  beaconEmbedding: Uint8Array | null;
  /** The keys of a dense step, the same for every layer; null when each layer selects (`select`). */
  keys: LayerKeys | null;
  /** A TokenSelect step whose layers select: candidates [spec.nInit, localStart), local [localStart, T). */
  select: { spec: SelectSpec; localStart: number } | null;
  /** A TokenSelect step whose selection is every row (it runs dense, positions = index). */
  selectsAll: boolean;
  /** The largest RoPE position the step rotates at (keys, queries, TokenSelect's q̄). */
  maxPosition: number;
}

const fail = (why: string): never => {
  throw new Error(`step: ${why}`);
};

/** Checks `req` against a sequence of M stored rows and the model, and plans it. Throws, naming the field, on a bad request. */
export function planStep(req: StepRequest, M: number, model: Model): StepPlan {
  const c = model.config;
  const n = req.tokens.length;
  const T = M + n;
  if (n === 0) fail('no rows');
  if (req.rope.invFreq.length !== c.rotaryDim / 2) fail(`rope.invFreq has ${req.rope.invFreq.length} entries, rotary dims/2 is ${c.rotaryDim / 2}`);
  if (req.beacon && req.beacon.length !== n) fail(`beacon flags have ${req.beacon.length} entries for ${n} rows`);
  if (req.beaconEmbedding && req.beaconEmbedding.length !== n) fail(`beaconEmbedding flags have ${req.beaconEmbedding.length} entries for ${n} rows`);
  const beacon = req.beacon?.some((b) => b === 1) ? req.beacon : null;
  const embedFlags = req.beaconEmbedding ?? req.beacon;
  const beaconEmbedding = embedFlags?.some((b) => b === 1) ? embedFlags : null;
  if (beacon && !model.tensors.layers[0].beaconQ) fail('beacon rows need a beacon checkpoint (beacon projections)');
  if (beaconEmbedding && !model.tensors.model.beaconEmbed) fail('rows with the beacon embedding need an Activation Beacon checkpoint');
  for (let i = 0; i < n; i++) {
    const id = req.tokens[i];
    if (beaconEmbedding?.[i] !== 1 && !(id >= 0 && id < c.vocabSize)) fail(`token id ${id} is outside the vocabulary (${c.vocabSize})`);
  }
  for (const r of req.logitRows) if (!(r >= 0 && r < n)) fail(`logit row ${r} is outside the step's rows (0..${n - 1})`);

  if (req.select) {
    const spec = req.select;
    if (!(spec.nInit >= 0 && spec.topK >= 0 && spec.nLocal >= 0)) fail('select sizes must be non-negative');
    const { localStart, all } = selectionBounds(T, n, spec);
    // Selected keys are rotated at their rank in S (at most init + top + local of them) and q̄ at
    // nLocal + i: positions stay within the window however long the sequence is.
    const ranks = spec.nInit + Math.min(spec.topK, localStart - spec.nInit) + (T - localStart);
    if (!all) return { n, M, T, beacon, beaconEmbedding, keys: null, select: { spec, localStart }, selectsAll: false, maxPosition: Math.max(ranks - 1, spec.nLocal + n - 1) };
    const positions = Int32Array.from({ length: n }, (_, i) => M + i);
    const keys: LayerKeys = { rows: null, count: T, firstNew: M, positions, mask: { kind: 'causal' } };
    return { n, M, T, beacon, beaconEmbedding, keys, select: null, selectsAll: true, maxPosition: T - 1 };
  }

  if (req.positions.length !== n) fail(`positions has ${req.positions.length} entries for ${n} rows`);
  let mask: LayerKeys['mask'] = { kind: 'causal' };
  if (req.mask.kind === 'ranges') {
    const ranges = req.mask.ranges;
    if (ranges.length !== 6 * n) fail(`mask.ranges has ${ranges.length} entries, 6 per row is ${6 * n}`);
    let lo = T;
    let hi = 0;
    for (let i = 0; i < n; i++) {
      let sees = false;
      for (let r = 0; r < 3; r++) {
        const a = ranges[6 * i + 2 * r];
        const b = ranges[6 * i + 2 * r + 1];
        if (b <= a) continue;
        if (a < 0 || b > T) fail(`mask range [${a}, ${b}) of row ${i} is outside the keys (0..${T})`);
        sees = true;
        lo = Math.min(lo, a);
        hi = Math.max(hi, b);
      }
      if (!sees) fail(`row ${i} of the mask sees no key`);
    }
    mask = { kind: 'ranges', ranges, lo, hi };
  }
  let maxPosition = T - 1;
  for (const p of req.positions) {
    if (!(p >= 0)) fail(`position ${p} is negative`);
    maxPosition = Math.max(maxPosition, p);
  }
  const keys: LayerKeys = { rows: null, count: T, firstNew: M, positions: req.positions, mask };
  return { n, M, T, beacon, beaconEmbedding, keys, select: null, selectsAll: false, maxPosition };
}

/** The keys of one layer of a TokenSelect step: the selected rows S, re-numbered by rank. */
export function selectedKeys(S: Int32Array, n: number): LayerKeys {
  const firstNew = S.length - n;
  const positions = Int32Array.from({ length: n }, (_, i) => firstNew + i);
  return { rows: S, count: S.length, firstNew, positions, mask: { kind: 'causal' } };
}

/** The RoPE position of key r among the keys in play. */
export function keyPosition(keys: LayerKeys, r: number): number {
  return r < keys.firstNew ? r : keys.positions[r - keys.firstNew];
}

/**
 * Which keys row i sees, as up to three half-open ranges of key indices (into the keys in play)
 * written to `out`; returns how many.
 */
export function visibleRanges(keys: LayerKeys, i: number, out: Array<[number, number]>): number {
  if (keys.mask.kind === 'causal') {
    out[0] = [0, keys.firstNew + i + 1];
    return 1;
  }
  let k = 0;
  for (let r = 0; r < 3; r++) {
    const a = keys.mask.ranges[6 * i + 2 * r];
    const b = keys.mask.ranges[6 * i + 2 * r + 1];
    if (b > a) out[k++] = [a, b];
  }
  return k;
}

/** Every row index 0..T-1: the selection a step reports where it attends to everything. */
export function allRows(T: number): Int32Array {
  return Int32Array.from({ length: T }, (_, j) => j);
}

/** Checks a retain (or importRows) list against `stored` rows. */
export function checkRetain(rows: Int32Array, stored: number, op = 'retain'): void {
  for (const r of rows) {
    if (!(r >= 0 && r < stored)) throw new Error(`${op}: row ${r} is outside the stored rows (0..${stored - 1})`);
  }
}
