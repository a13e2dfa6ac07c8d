// The keys and values one layer's attention reads (attention.ts takes them in float32), made from
// the KV store (kv-store.ts) by the native addon's loop when it has one (native-loops.ts), else by
// the ONNX Runtime graphs below — either way no stored row passes through JavaScript:
//   gather  (select) per KV head, the selected rows S of the stored pre-RoPE keys and of the values;
//           the keys rotated at their rank r in S (the compact re-numbering of ../step/plan.ts):
//             sk_h = RoPE_scale(k_h[S], r)        sv_h = v_h[S]                          [|S|, D]
//   widen   (dense steps with f16 KV) the stored pre-RoPE keys and the values, rows [0, T), cast to
//           float32 once per layer and step, the keys rotated at each row's position p_j (its index
//           for stored rows, the plan's position for new ones; cos/sin rows given per row):
//             kf_h = RoPE_scale(k_h[0..T), p)       vf_h = v_h[0..T)                   [T, D]
//           — every query tile of the attention then reads them. No rotated copy of the keys is
//           kept between steps (with f32 KV the sequence keeps one, kv-store.ts): it would hold
//           half as many bytes again as the KV itself, for the cost of rotating T rows per layer
//           and step here
// Inputs are the store's arrays, read in place; outputs are written straight into the sequence's
// float32 scratch (pre-allocated outputs), one layer's worth reused from layer to layer: [|S|, D]
// per head for a selection, [T, D] per head for a dense f16 step. With f32 KV a dense step passes
// the store's own arrays and needs neither graph. The rotation runs in float32 on the stored value
// (f16 keys are cast up first), over the first R = rotaryDim dims of each head (Phi's partial
// rotary leaves the rest as stored); cos/sin are rows 0..|S|−1 of the RoPE table (step/rope.ts),
// scale YaRN's attention factor (1 otherwise), which multiplies cos and sin as in step/rope.ts
// rotate (so the dims past R stay as stored). Softplus-attention models get their rotated keys at
// unit length, as the sequence keeps them for dense steps (attention-softplus.ts).

import type * as ortTypes from 'onnxruntime-node';
import type { ModelConfig } from '../../model/config.js';
import { Graph } from './graph.js';
import { kvTensor, type KvArray, type KvDtype } from './kv-store.js';
import type { NativeLoops } from './native-loops.js';

const storedType = (kvDtype: KvDtype) => (kvDtype === 'f16' ? 'float16' : 'float');

export function buildGatherGraph(c: ModelConfig, kvDtype: KvDtype): Uint8Array {
  const D = c.headDim;
  const g = new Graph('gather');
  g.opset = 23; // RotaryEmbedding
  const rows = g.input('rows', 'int32', ['S']);
  const [cos, sin] = scaledTables(g, c, 'S');
  const toFloat = (x: string) => (kvDtype === 'f16' ? g.op('Cast', [x], { to: 1 }) : x);
  for (let h = 0; h < c.numKvHeads; h++) {
    const k = toFloat(g.op('Gather', [g.input(`k${h}`, storedType(kvDtype), ['T', D]), rows], { axis: 0 })); // [S, D]
    g.output(rotateRows(g, c, k, cos, sin), `sk${h}`, 'float', ['S', D]);
    g.output(toFloat(g.op('Gather', [g.input(`v${h}`, storedType(kvDtype), ['T', D]), rows], { axis: 0 })), `sv${h}`, 'float', ['S', D]);
  }
  return g.encode();
}

/** The inputs cos, sin [rows, R/2] times the input scale [1], as [1, rows, R/2]. */
function scaledTables(g: Graph, c: ModelConfig, rows: string): [string, string] {
  const half = c.rotaryDim / 2;
  const cos = g.input('cos', 'float', [rows, half]);
  const sin = g.input('sin', 'float', [rows, half]);
  const scale = g.input('scale', 'float', [1]);
  const table = (x: string) => g.op('Unsqueeze', [g.op('Mul', [x, scale]), g.ints([0])]);
  return [table(cos), table(sin)];
}

/**
 * Rows k [S, D] (float32) rotated, row r by the scaled cos/sin [1, S, R/2] row r; at unit length
 * for softplus-attention models.
 */
function rotateRows(g: Graph, c: ModelConfig, k: string, cos: string, sin: string): string {
  const D = c.headDim;
  const R = c.rotaryDim;
  const rotary: Record<string, number> = R < D ? { interleaved: 0, rotary_embedding_dim: R } : { interleaved: 0 };
  const rotated = g.op('RotaryEmbedding', [g.op('Unsqueeze', [k, g.ints([0, 1])]), cos, sin], rotary); // [1, 1, S, D]
  const sk = g.op('Reshape', [rotated, g.ints([-1, D])]);
  return c.softplus ? unitLength(g, sk) : sk;
}

/** Rows of x [S, D] scaled to unit length (a zero row stays 0): the keys softplus attention reads (attention-softplus.ts). */
function unitLength(g: Graph, x: string): string {
  const norm = g.op('Sqrt', [g.op('ReduceSumSquare', [x, g.ints([-1])], { keepdims: 1 })]); // [S, 1]
  const zero = g.scalar(0);
  return g.op('Div', [x, g.op('Where', [g.op('Greater', [norm, zero]), norm, g.scalar(1)])]);
}

export function buildWidenGraph(c: ModelConfig): Uint8Array {
  const D = c.headDim;
  const g = new Graph('widen');
  g.opset = 23; // RotaryEmbedding
  const [cos, sin] = scaledTables(g, c, 'T');
  for (let h = 0; h < c.numKvHeads; h++) {
    const k = g.op('Cast', [g.input(`k${h}`, 'float16', ['T', D])], { to: 1 });
    g.output(rotateRows(g, c, k, cos, sin), `k${h}f`, 'float', ['T', D]);
    g.output(g.op('Cast', [g.input(`v${h}`, 'float16', ['T', D])], { to: 1 }), `v${h}f`, 'float', ['T', D]);
  }
  return g.encode();
}

/** A head's float32 scratch rows [0, rows) as a [rows, D] output tensor. */
const out = (ort: typeof ortTypes, a: Float32Array, rows: number, D: number) => new ort.Tensor('float32', a.subarray(0, rows * D), [rows, D]);

export interface GatherInput {
  /** Per KV head, the stored rows [≥T, D] in the KV dtype; rows [0, T) are passed. */
  keys: KvArray[];
  values: KvArray[];
  T: number;
  /** [|S|] selected rows, ascending. */
  rows: Int32Array;
  /** The RoPE table's cos and sin ([·, R/2] row-major, at least |S| rows) and its scale. */
  cos: Float32Array;
  sin: Float32Array;
  scale: number;
}

/** What the native loop is given for rows `rows` (an index list, or T for rows [0, T)). */
function nativeGather(c: ModelConfig, a: Omit<GatherInput, 'rows'>, rows: Int32Array | number, outK: Float32Array[], outV: Float32Array[], threads: number) {
  return { keys: a.keys, values: a.values, D: c.headDim, rotaryDim: c.rotaryDim, rows, cos: a.cos, sin: a.sin, scale: a.scale, unitLength: c.softplus !== null, outK, outV, threads };
}

/** Writes the selected keys (rotated) and values into sk/sv (per KV head, [≥|S|, D] float32). The native loop when given. */
export async function gatherSelected(
  ort: typeof ortTypes,
  session: ortTypes.InferenceSession,
  c: ModelConfig,
  a: GatherInput,
  sk: Float32Array[],
  sv: Float32Array[],
  native: NativeLoops | null = null,
): Promise<void> {
  if (native) return native.gatherRotated(nativeGather(c, a, a.rows, sk, sv, native.threads));
  const D = c.headDim;
  const half = c.rotaryDim / 2;
  const S = a.rows.length;
  const feeds: Record<string, ortTypes.Tensor> = {
    rows: new ort.Tensor('int32', a.rows, [S]),
    cos: new ort.Tensor('float32', a.cos.subarray(0, S * half), [S, half]),
    sin: new ort.Tensor('float32', a.sin.subarray(0, S * half), [S, half]),
    scale: new ort.Tensor('float32', Float32Array.of(a.scale), [1]),
  };
  const fetches: Record<string, ortTypes.Tensor> = {};
  for (let h = 0; h < c.numKvHeads; h++) {
    feeds[`k${h}`] = kvTensor(ort, a.keys[h], D, 0, a.T);
    feeds[`v${h}`] = kvTensor(ort, a.values[h], D, 0, a.T);
    fetches[`sk${h}`] = out(ort, sk[h], S, D);
    fetches[`sv${h}`] = out(ort, sv[h], S, D);
  }
  await session.run(feeds, fetches);
}

/**
 * Writes rows [0, T) of f16 keys (rotated: row j by cos/sin row j, [≥T, R/2] row-major, times
 * `scale`) and values as float32 into k32/v32 (per KV head, [≥T, D]).
 */
export async function widen(
  ort: typeof ortTypes,
  session: ortTypes.InferenceSession,
  c: ModelConfig,
  a: Omit<GatherInput, 'rows'>,
  k32: Float32Array[],
  v32: Float32Array[],
  native: NativeLoops | null = null,
): Promise<void> {
  if (native) return native.gatherRotated(nativeGather(c, a, a.T, k32, v32, native.threads));
  const D = c.headDim;
  const half = c.rotaryDim / 2;
  const { keys, values, T } = a;
  const feeds: Record<string, ortTypes.Tensor> = {
    cos: new ort.Tensor('float32', a.cos.subarray(0, T * half), [T, half]),
    sin: new ort.Tensor('float32', a.sin.subarray(0, T * half), [T, half]),
    scale: new ort.Tensor('float32', Float32Array.of(a.scale), [1]),
  };
  const fetches: Record<string, ortTypes.Tensor> = {};
  for (let h = 0; h < c.numKvHeads; h++) {
    feeds[`k${h}`] = kvTensor(ort, keys[h], D, 0, T);
    feeds[`v${h}`] = kvTensor(ort, values[h], D, 0, T);
    fetches[`k${h}f`] = out(ort, k32[h], T, D);
    fetches[`v${h}f`] = out(ort, v32[h], T, D);
  }
  await session.run(feeds, fetches);
}
