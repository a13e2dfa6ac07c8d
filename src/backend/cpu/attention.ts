// Attention: weight-free ONNX graphs over one tile of query rows, and the JavaScript driver that
// cuts a step's queries into tiles so the score tensor stays under a fixed budget.
//
// One call computes, for qt query rows (already rotated) against T keys (already rotated):
//   for each KV head g (query heads h = g·G .. g·G + G − 1, G = Hq / Hkv):
//     S_g = Q_g K_gᵀ / √D  + mask    [G, qt, T]
//     O_g = softmax(S_g) V_g         [G, qt, D]
//   out [qt, Hq·D] (row layout, ready for o_proj)
// Three implementations of the same math, picked per tile by its number of rows (measured on two
// Zen 5 cores: each ORT graph is up to 3x faster than the other in its range):
//   native   a decoded row (one-row causal tile) of a softmax model, when the addon has the loop
//            (native-loops.ts, native/src/attention_rows.h): no ORT call's overhead; 0.16 vs
//            0.24 ms over 2,700 keys (select's decode at 32K), level at 5,300 on one thread; slower
//            than the graph from a few rows up, so only for one
//   matmul   FusedMatMul / Softmax / MatMul with the G heads' rows stacked into one [G·qt, D]
//            GEMM per KV head — best for a few rows (decoding without the addon, very long T)
//   fused    the ONNX Attention operator (opset 23), one per KV head (q_num_heads = G,
//            kv_num_heads = 1) — best from about FUSED_MIN_ROWS rows up
// The mask is the sum of two inputs:
//   offset  row i sees keys j ≤ offset + i: the −∞ upper triangle is made in the graph
//           (ConstantOfShape −∞ → Trilu upper, k = offset + 1), so nothing of size qt×T crosses
//           from JavaScript for causal steps (offset ≥ T − 1 hides nothing)
//   bias    an additive mask broadcast to [qt, T]: a [1, 1] zero for causal steps, or the v1
//           beacon `ranges` as 0 (visible) / −∞ (hidden) from JavaScript
// One graph per implementation (not one per mask kind): each session keeps an arena (index.ts),
// and fewer sessions keep fewer arenas.
//
// The scores of one call are Hq·qt·T floats. A step with n rows over T keys is cut into query tiles
// of qt = ⌊budget / (Hq·T·4)⌋ rows (at least 1), so a step's scratch memory is bounded by the
// budget (plus a few same-sized temporaries inside ORT) whatever n is; T itself is bounded by the
// positions a strategy can address (full: the RoPE window; stream: sink + recent; beacon: memory +
// window; select: init + top-k + local). Keys are the contiguous rows [0, T) of per-head arrays,
// passed to ORT without a copy.

import type * as ortTypes from 'onnxruntime-node';
import type { ModelConfig } from '../../model/config.js';
import type { NativeLoops } from './native-loops.js';
import { Graph } from './graph.js';

export type AttentionImpl = 'matmul' | 'fused';

/** Tiles with at least this many query rows use the fused operator. */
export const FUSED_MIN_ROWS = 32;

/**
 * Bytes of attention scores one call may hold (the query tile is sized from it). The attention
 * sessions' arenas grow to a few times this; 8 MiB instead of 32 lowered the 2K-token peak by
 * ~40 MiB at the same CPU time per token (8K tokens, full).
 */
export const SCORE_BUDGET = 8 << 20;

export function buildAttentionGraph(c: ModelConfig, impl: AttentionImpl): Uint8Array {
  const Hq = c.numHeads;
  const Hkv = c.numKvHeads;
  const D = c.headDim;
  const G = Hq / Hkv;
  const g = new Graph(`attention_${impl}`);
  const q = g.input('q', 'float', ['qt', Hq * D]);
  const keys = Array.from({ length: Hkv }, (_, h) => g.input(`k${h}`, 'float', ['T', D]));
  const values = Array.from({ length: Hkv }, (_, h) => g.input(`v${h}`, 'float', ['T', D]));
  const Tdim = g.op('Slice', [g.op('Shape', [keys[0]]), g.ints([0]), g.ints([1])]); // [T]
  const bias = additiveMask(g, q, Tdim);

  if (impl === 'fused') {
    // Per KV head: the group's query columns [qt, G·D] → Attention on [1, qt, G·D] and [1, T, D].
    g.opset = 23;
    const qs = Hkv === 1 ? [q] : g.opN('Split', [q, g.ints(Array(Hkv).fill(G * D))], Hkv, { axis: 1 });
    const outs: string[] = [];
    for (let h = 0; h < Hkv; h++) {
      const one = (x: string) => g.op('Unsqueeze', [x, g.ints([0])]);
      const inputs = [one(qs[h]), one(keys[h]), one(values[h]), bias];
      outs.push(g.op('Attention', inputs, { q_num_heads: G, kv_num_heads: 1, scale: { float: 1 / Math.sqrt(D) } })); // [1, qt, G·D]
    }
    const o = Hkv === 1 ? outs[0] : g.op('Concat', outs, { axis: -1 });
    g.output(g.op('Squeeze', [o, g.ints([0])]), 'out', 'float', ['qt', Hq * D]);
    return g.encode();
  }

  // matmul: [qt, Hkv, G, D] → [Hkv, G, qt, D] → per KV head [G·qt, D], one 2-D GEMM each (K packed once).
  const qh = g.op('Transpose', [g.op('Reshape', [q, g.ints([0, Hkv, G, D])])], { perm: [1, 2, 0, 3] });
  const qs = Hkv === 1 ? [qh] : g.opN('Split', [qh, g.ints(Array(Hkv).fill(1))], Hkv, { axis: 0 });
  const byHead = g.op('Concat', [g.ints([G, -1]), Tdim], { axis: 0 }); // [G, qt, T]
  const flat = g.op('Concat', [g.ints([-1]), Tdim], { axis: 0 }); // [G·qt, T]
  const outs: string[] = [];
  for (let h = 0; h < Hkv; h++) {
    const qg = g.op('Reshape', [qs[h], g.ints([-1, D])]); // [G·qt, D]
    const s = g.op('FusedMatMul', [qg, keys[h]], { transB: 1, alpha: { float: 1 / Math.sqrt(D) } }, { domain: 'com.microsoft' }); // [G·qt, T]
    const masked = g.op('Reshape', [g.op('Add', [g.op('Reshape', [s, byHead]), bias]), flat]);
    const p = g.op('Softmax', [masked], { axis: -1 });
    outs.push(g.op('MatMul', [p, values[h]])); // [G·qt, D]
  }
  const o = g.op('Reshape', [Hkv === 1 ? outs[0] : g.op('Concat', outs, { axis: 0 }), g.ints([Hq, -1, D])]); // [Hq, qt, D]
  g.output(g.op('Reshape', [g.op('Transpose', [o], { perm: [1, 0, 2] }), g.ints([0, Hq * D])]), 'out', 'float', ['qt', Hq * D]);
  return g.encode();
}

/**
 * The additive [qt, T] mask (broadcast over heads) from the `offset` and `bias` inputs: 0 where a
 * row sees a key, −∞ elsewhere. q: the [qt, ·] queries, Tdim: [T] as a 1-D int64 tensor.
 */
export function additiveMask(g: Graph, q: string, Tdim: string): string {
  const offset = g.input('offset', 'int64', [1]);
  const qt = g.op('Slice', [g.op('Shape', [q]), g.ints([0]), g.ints([1])]);
  const negInf = g.op('ConstantOfShape', [g.op('Concat', [qt, Tdim], { axis: 0 })], {
    value: { tensor: { name: 'v', dataType: 'float', dims: [1], data: { kind: 'raw', bytes: new Uint8Array(Float32Array.of(-Infinity).buffer) } } },
  });
  const k = g.op('Add', [g.op('Reshape', [offset, g.ints([])]), g.constant('int64', [], [1])]);
  return g.op('Add', [g.op('Trilu', [negInf, k], { upper: 1 }), g.input('bias', 'float', ['bq', 'bt'])]);
}

/** The sessions: one per implementation (softmax models), or the softplus one (attention-softplus.ts). */
export type AttentionSessions = Partial<Record<AttentionImpl | 'softplus', ortTypes.InferenceSession>>;

/** Which keys each query row sees, for the driver. */
export type TileMask =
  | { kind: 'causal'; offset: number } // row i (of the step) sees keys [0, offset + i]
  | { kind: 'bias'; bias: (q0: number, q1: number, T: number) => Float32Array }; // [q1 − q0, T] additive

export interface AttentionInput {
  /** [n, Hq·D] rotated queries (rows of the step). */
  q: Float32Array;
  n: number;
  /** Per KV head [≥T, D] rotated keys and values; rows [0, T) are used. */
  keys: Float32Array[];
  values: Float32Array[];
  T: number;
  mask: TileMask;
  /** Score bytes per call (default SCORE_BUDGET). */
  budget?: number;
  /** The addon's loops (one-row causal tiles); absent or null: ORT for every tile. */
  native?: NativeLoops | null;
}

const ZERO = new Float32Array(1);

export async function attend(ort: typeof ortTypes, s: AttentionSessions, c: ModelConfig, a: AttentionInput, out: Float32Array): Promise<void> {
  const qDim = c.numHeads * c.headDim;
  const D = c.headDim;
  const qt = Math.max(1, Math.min(a.n, Math.floor((a.budget ?? SCORE_BUDGET) / (c.numHeads * a.T * 4))));
  for (let q0 = 0; q0 < a.n; q0 += qt) {
    const q1 = Math.min(a.n, q0 + qt);
    const rows = q1 - q0;
    if (a.native && rows === 1 && a.mask.kind === 'causal' && !c.softplus) {
      a.native.attendCausal(a.q.subarray(q0 * qDim, q1 * qDim), rows, c.numHeads, D, a.keys, a.values, a.T, a.mask.offset + q0, out.subarray(q0 * qDim, q1 * qDim), a.native.threads);
      continue;
    }
    const session = s[c.softplus ? 'softplus' : rows >= FUSED_MIN_ROWS ? 'fused' : 'matmul']!;
    // Keys beyond the last one any row of the tile sees are left out.
    const T = a.mask.kind === 'causal' ? Math.min(a.T, a.mask.offset + q1) : a.T;
    const feeds: Record<string, ortTypes.Tensor> = {
      q: new ort.Tensor('float32', a.q.subarray(q0 * qDim, q1 * qDim), [rows, qDim]),
    };
    for (let h = 0; h < a.keys.length; h++) {
      feeds[`k${h}`] = new ort.Tensor('float32', a.keys[h].subarray(0, T * D), [T, D]);
      feeds[`v${h}`] = new ort.Tensor('float32', a.values[h].subarray(0, T * D), [T, D]);
    }
    if (a.mask.kind === 'causal') {
      // Row q0 + i sees keys [0, offset + q0 + i].
      feeds.offset = new ort.Tensor('int64', BigInt64Array.of(BigInt(a.mask.offset + q0)), [1]);
      feeds.bias = new ort.Tensor('float32', ZERO, [1, 1]);
    } else {
      feeds.offset = new ort.Tensor('int64', BigInt64Array.of(BigInt(T)), [1]);
      feeds.bias = new ort.Tensor('float32', a.mask.bias(q0, q1, T), [rows, T]);
    }
    await session.run(feeds, { out: new ort.Tensor('float32', out.subarray(q0 * qDim, q1 * qDim), [rows, qDim]) });
  }
}

