// TokenSelect's soft vote on the cpu backend (../step/select.ts decides the rest: q̄ is formed
// there, reuse and the selected set too). Over the candidate keys — nc = candidates:
//   for each KV head g:  S_g = q̄_g K_gᵀ      q̄_g [G, D] (no 1/√D), K_g [nc, D] pre-RoPE
//   vote = Σ over all heads of softmax(S_g) over candidates     [nc]
//   top  = the k largest votes (ties to the lower index)
// computed by the native addon's loop when it has one (native-loops.ts), else by the ONNX Runtime
// graph below (its TopK: larger first, ties to the lower index).
//
// Keys arrive in the KV dtype (kv-store.ts); f16 keys are cast to float32 in the graph.
//
// Precision note: the reference sums the vote in float64, and so does the native loop (its scores
// and exps are float32); the graph sums in float32, so two candidates whose votes agree to ~1e-7
// relative can trade places at the top-k boundary.

import type * as ortTypes from 'onnxruntime-node';
import type { ModelConfig } from '../../model/config.js';
import { Graph } from './graph.js';
import { kvTensor, type KvArray, type KvDtype } from './kv-store.js';
import type { NativeLoops } from './native-loops.js';

export function buildVoteGraph(c: ModelConfig, kvDtype: KvDtype = 'f32'): Uint8Array {
  const Hq = c.numHeads;
  const Hkv = c.numKvHeads;
  const D = c.headDim;
  const G = Hq / Hkv;
  const g = new Graph('vote');
  const qbar = g.input('qbar', 'float', [Hq, D]);
  const k = g.input('k', 'int64', [1]);
  const qs = Hkv === 1 ? [qbar] : g.opN('Split', [qbar, g.ints(Array(Hkv).fill(G))], Hkv, { axis: 0 });
  let vote = '';
  for (let h = 0; h < Hkv; h++) {
    const keys = kvDtype === 'f16' ? g.op('Cast', [g.input(`k${h}`, 'float16', ['nc', D])], { to: 1 }) : g.input(`k${h}`, 'float', ['nc', D]);
    const s = g.op('FusedMatMul', [qs[h], keys], { transB: 1 }, { domain: 'com.microsoft' }); // [G, nc]
    const p = g.op('ReduceSum', [g.op('Softmax', [s], { axis: -1 }), g.ints([0])], { keepdims: 0 }); // [nc]
    vote = vote ? g.op('Add', [vote, p]) : p;
  }
  const [, top] = g.opN('TopK', [vote, k], 2, { axis: -1, largest: 1, sorted: 1 });
  g.output(top, 'top', 'int64', ['k']);
  return g.encode();
}

/**
 * The k candidate rows in [from, to) with the largest soft vote, ascending. `keys` are per-KV-head
 * [rows, D] arrays of pre-RoPE keys in the KV dtype. The native loop when given, else the graph's session.
 */
export async function topBySoftVote(
  ort: typeof ortTypes,
  session: ortTypes.InferenceSession,
  c: ModelConfig,
  qbar: Float32Array,
  keys: KvArray[],
  from: number,
  to: number,
  k: number,
  native: NativeLoops | null = null,
): Promise<Int32Array> {
  if (native) return native.softVoteTopK(qbar, keys, c.headDim, from, to, k, native.threads);
  const nc = to - from;
  const D = c.headDim;
  const feeds: Record<string, ortTypes.Tensor> = {
    qbar: new ort.Tensor('float32', qbar, [c.numHeads, D]),
    k: new ort.Tensor('int64', BigInt64Array.of(BigInt(Math.min(k, nc))), [1]),
  };
  keys.forEach((a, h) => (feeds[`k${h}`] = kvTensor(ort, a, D, from, to)));
  const r = await session.run(feeds);
  const top = Int32Array.from(r.top.data as BigInt64Array, (v) => Number(v) + from);
  return top.sort();
}
