// Scripted step sequences (contract.ts StepRequests) that cover what a backend must get right:
// causal steps at arbitrary positions, logits of chosen rows, retain, snapshot/restore, a RoPE
// scale, `ranges` masks, beacon rows (mixed, all-beacon, with beacon q/k/v/o), and TokenSelect with
// and without selection reuse. The same script runs on the reference and the native backends.

import type { StepRequest } from '../../../src/backend/contract.js';
import type { Model } from '../../../src/model/model.js';
import { range, ropeOf, tokens, type Op } from './helpers.js';

/** `scale` multiplies every length, so the GPU suite can run longer steps through the tiled kernels. */
export function causalOps(model: Model, scale = 1): Op[] {
  const V = model.config.vocabSize;
  const a = 13 * scale, b = 7 * scale;
  const step = (toks: Int32Array, pos: Int32Array, rows: Int32Array, ropeScale = 1): Op => ({
    step: { tokens: toks, positions: pos, mask: { kind: 'causal' }, logitRows: rows, rope: ropeOf(model, ropeScale) },
  });
  const kept = Int32Array.from([0, 1, 2, ...range(a - 3, b + 3)]);
  const M = kept.length;
  return [
    step(tokens(a, V, 1), range(0, a), Int32Array.of(a - 1, 0, 5)),
    step(tokens(b, V, 2), range(a, b), range(0, b)),
    { retain: kept },
    step(tokens(5, V, 3), range(M, 5), Int32Array.of(4, 1), 1.15),
    { reload: true },
    step(tokens(1, V, 4), Int32Array.of(M + 5), Int32Array.of(0)),
    step(tokens(9 * scale, V, 5), range(M + 6, 9 * scale), new Int32Array(0)),
    step(tokens(1, V, 6), Int32Array.of(M + 6 + 9 * scale), Int32Array.of(0)),
  ];
}

/**
 * The v1 append layout with `ranges` masks: raw rows see memory and earlier raw rows; beacon j sees
 * the memory, the first (j+1)·r raw rows of the window, and itself, at position M + (j+1)·r.
 * Beacon rows are flagged when the model has beacon weights.
 */
export function rangesOps(model: Model, scale = 1): Op[] {
  const V = model.config.vocabSize;
  const hasBeacon = Boolean(model.config.beacon);
  const memory = 12 * scale;
  const raw = 8 * scale, r = 4, k = raw / r;
  const first: StepRequest = {
    tokens: tokens(memory, V, 7),
    positions: range(0, memory),
    mask: { kind: 'causal' },
    logitRows: Int32Array.of(memory - 1),
    rope: ropeOf(model),
  };
  const n = raw + k;
  const ranges = new Int32Array(6 * n);
  const positions = new Int32Array(n);
  for (let i = 0; i < raw; i++) {
    ranges.set([0, memory + i + 1], 6 * i);
    positions[i] = memory + i;
  }
  for (let j = 0; j < k; j++) {
    const row = raw + j;
    ranges.set([0, memory, memory, memory + (j + 1) * r, memory + row, memory + row + 1], 6 * row);
    positions[row] = memory + (j + 1) * r;
  }
  const window: StepRequest = {
    tokens: Int32Array.from([...tokens(raw, V, 8), ...new Array(k).fill(0)]),
    beacon: hasBeacon ? Uint8Array.from({ length: n }, (_, i) => (i >= raw ? 1 : 0)) : undefined,
    positions,
    mask: { kind: 'ranges', ranges },
    logitRows: range(0, raw),
    rope: ropeOf(model),
  };
  // Keep the memory and the window's last rows (beacons when flagged), then decode one token.
  const keep = Int32Array.from([...range(0, memory), ...range(memory + raw, k)]);
  const decode: StepRequest = {
    tokens: tokens(1, V, 9),
    positions: Int32Array.of(keep.length),
    mask: { kind: 'causal' },
    logitRows: Int32Array.of(0),
    rope: ropeOf(model),
  };
  return [{ step: first }, { step: window }, { retain: keep }, { step: decode }];
}

/** Interleaved beacon rows (v3): a beacon after every r-th raw token, an all-beacon step, a retain. */
export function beaconOps(model: Model, scale = 1): Op[] {
  const V = model.config.vocabSize;
  const r = 4;
  const interleave = (raw: Int32Array, M: number): StepRequest => {
    const ids: number[] = [];
    const flags: number[] = [];
    const rawRows: number[] = [];
    raw.forEach((t, i) => {
      rawRows.push(ids.length);
      ids.push(t);
      flags.push(0);
      if ((i + 1) % r === 0) {
        ids.push(0);
        flags.push(1);
      }
    });
    return {
      tokens: Int32Array.from(ids),
      beacon: Uint8Array.from(flags),
      positions: range(M, ids.length),
      mask: { kind: 'causal' },
      logitRows: Int32Array.from(rawRows),
      rope: ropeOf(model),
    };
  };
  const w1 = interleave(tokens(16 * scale, V, 10), 0);
  const beaconRows = Int32Array.from([...w1.beacon!].flatMap((f, i) => (f ? [i] : [])));
  const allBeacon: StepRequest = {
    tokens: new Int32Array(3),
    beacon: Uint8Array.of(1, 1, 1),
    positions: range(beaconRows.length, 3),
    mask: { kind: 'causal' },
    logitRows: new Int32Array(0),
    rope: ropeOf(model),
  };
  const M2 = beaconRows.length + 3;
  return [
    { step: w1 },
    { retain: beaconRows },
    { step: allBeacon },
    { step: interleave(tokens(10 * scale, V, 11), M2) },
    { reload: true },
    { step: interleave(tokens(1, V, 12), M2 + 10 * scale + Math.floor((10 * scale) / r)) },
  ];
}

/**
 * TokenSelect: a chunked prefill (the first chunk selects everything, later ones select), a chunk
 * longer than nLocal, then decode steps with reuse thresholds that hit and miss the cache.
 */
export function selectOps(model: Model, scale = 1): Op[] {
  const V = model.config.vocabSize;
  const spec = (reuseCosine: number | null) => ({ nInit: 4 * scale, topK: 8 * scale, nLocal: 8 * scale, reuseCosine });
  const ops: Op[] = [];
  let M = 0;
  const add = (n: number, reuse: number | null, seed: number) => {
    ops.push({
      step: {
        tokens: tokens(n, V, seed),
        positions: range(M, n),
        mask: { kind: 'causal' },
        select: spec(reuse),
        logitRows: n > 1 ? Int32Array.of(0, n - 1) : Int32Array.of(0),
        rope: ropeOf(model),
        reportSelection: true,
      },
    });
    M += n;
  };
  for (let c = 0; c < 8; c++) add(8 * scale, null, 20 + c);
  add(12 * scale, null, 30);
  const thresholds = [0.2, 0.2, 0.999, null, 0.2, -1];
  thresholds.forEach((t, i) => add(1, t, 40 + i));
  return ops;
}
