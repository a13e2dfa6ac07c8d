// Softplus attention (../attention-softplus.ts, the formulas) as a weight-free ONNX graph over one
// tile of query rows: the softplus counterpart of attention.ts's `matmul` graph, with the same
// inputs (q, k_h, v_h, offset, bias) and output, run by the same tiling driver (`attend`). The keys
// come in rotated AND of unit length (the cpu sequence stores them so for softplus models: only
// k/‖k‖ is ever used, and normalising each key once beats normalising all T keys in every call).
//
// For qt query rows (rotated) against T unit keys k̂, per KV head g (query heads G·g … G·g+G−1):
//   n_i      = Σ_j visible_ij           the keys row i sees (from the mask: 0 visible, −∞ hidden)
//   s_i      = ln(D)·ln(n_i)            the row's length scale
//   Z        = (s_i · q_i/‖q_i‖) k̂ᵀ      scaled cosine similarities (a zero q stays 0)   [G, qt, T]
//   E        = softplus(Z), exactly 0 where hidden                                      [G, qt, T]
//   LSSA:  O = (E V_g) / Σ_j E          (the sum is > 0: every visible term is)
//   LSSAR (power p, offset o, offset-free rows r0; p, o, r0 are constants of the graph):
//   X        = relu(E · n_i/Σ_j E − o_i),  o_i = 0 when n_i ≤ r0, else o               [G, qt, T]
//   R        = X / max_j X   (a row whose max is 0: 1 on its visible keys, i.e. uniform)
//   O        = (R^p V_g) / Σ_j R^p       (x^p / Σ x^p without overflow; Σ ≥ 1)
//   out [qt, Hq·D] (row layout, ready for o_proj)
// Normalising after the value product (one [G·qt, D] division instead of a [G, qt, T] one) gives
// the same weights up to rounding. n_i is the count of keys the mask lets row i see, so a row's
// length scale and offset follow exactly the keys it attends to, whatever the strategy (the rule
// in ../attention-softplus.ts).

import type { ModelConfig } from '../../model/config.js';
import { additiveMask } from './attention.js';
import { Graph } from './graph.js';

export function buildSoftplusAttentionGraph(c: ModelConfig): Uint8Array {
  const sp = c.softplus;
  if (!sp) throw new Error('buildSoftplusAttentionGraph: the model uses softmax attention');
  const Hq = c.numHeads;
  const Hkv = c.numKvHeads;
  const D = c.headDim;
  const G = Hq / Hkv;
  const g = new Graph('attention_softplus');
  const q = g.input('q', 'float', ['qt', Hq * D]);
  const keys = Array.from({ length: Hkv }, (_, h) => g.input(`k${h}`, 'float', ['T', D]));
  const values = Array.from({ length: Hkv }, (_, h) => g.input(`v${h}`, 'float', ['T', D]));
  const Tdim = g.op('Slice', [g.op('Shape', [keys[0]]), g.ints([0]), g.ints([1])]); // [T]
  const lastAxis = g.ints([-1]);
  const zero = g.scalar(0);
  const one = g.scalar(1);

  // Which keys each row sees, and how many: n [qt, 1], the row's length scale ln(D)·ln(n) [qt, 1].
  const hidden = g.op('IsInf', [additiveMask(g, q, Tdim)]); // [qt, T] bool
  const visible = g.op('Cast', [g.op('Not', [hidden])], { to: 1 }); // [qt, T] float 0/1
  const n = g.op('ReduceSum', [visible, lastAxis], { keepdims: 1 }); // [qt, 1]
  const scale = g.op('Mul', [g.op('Log', [n]), g.scalar(Math.log(D))]);
  const rw = sp.reweight;
  const rowOffset = rw ? g.op('Where', [g.op('LessOrEqual', [n, g.scalar(rw.noOffsetFirstRows)]), zero, g.scalar(rw.offset)]) : null; // [qt, 1]

  // Queries [qt, Hq·D] → s_i·q/‖q‖ per head → [Hkv, G, qt, D] → per KV head [G·qt, D].
  const q3 = g.op('Reshape', [q, g.ints([0, Hq, D])]);
  const qNorm = g.op('Sqrt', [g.op('ReduceSumSquare', [q3, lastAxis], { keepdims: 1 })]); // [qt, Hq, 1]
  const qScale = g.op('Div', [g.op('Unsqueeze', [scale, g.ints([2])]), g.op('Where', [g.op('Greater', [qNorm, zero]), qNorm, one])]);
  const qh = g.op('Transpose', [g.op('Reshape', [g.op('Mul', [q3, qScale]), g.ints([0, Hkv, G, D])])], { perm: [1, 2, 0, 3] });
  const qs = Hkv === 1 ? [qh] : g.opN('Split', [qh, g.ints(Array(Hkv).fill(1))], Hkv, { axis: 0 });
  const byHead = g.op('Concat', [g.ints([G, -1]), Tdim], { axis: 0 }); // [G, qt, T]
  const flat = g.op('Concat', [g.ints([-1]), Tdim], { axis: 0 }); // [G·qt, T]
  const rows = g.ints([-1, 1]); // [G, qt, 1] → [G·qt, 1]
  const outs: string[] = [];
  for (let h = 0; h < Hkv; h++) {
    const qg = g.op('Reshape', [qs[h], g.ints([-1, D])]); // [G·qt, D]
    const z = g.op('Reshape', [g.op('FusedMatMul', [qg, keys[h]], { transB: 1 }, { domain: 'com.microsoft' }), byHead]); // [G, qt, T]
    const e = g.op('Where', [hidden, zero, g.op('Softplus', [z])]);
    const eSum = g.op('ReduceSum', [e, lastAxis], { keepdims: 1 }); // [G, qt, 1]
    let w = e;
    let wSum = eSum;
    if (rw) {
      const x = g.op('Relu', [g.op('Sub', [g.op('Mul', [e, g.op('Div', [n, eSum])]), rowOffset!])]);
      const xMax = g.op('ReduceMax', [x, lastAxis], { keepdims: 1 }); // [G, qt, 1]
      const positive = g.op('Greater', [xMax, zero]);
      const r = g.op('Where', [positive, g.op('Div', [x, g.op('Where', [positive, xMax, one])]), visible]);
      w = power(g, r, rw.p);
      wSum = g.op('ReduceSum', [w, lastAxis], { keepdims: 1 });
    }
    const o = g.op('MatMul', [g.op('Reshape', [w, flat]), values[h]]); // [G·qt, D]
    outs.push(g.op('Div', [o, g.op('Reshape', [wSum, rows])]));
  }
  const o = g.op('Reshape', [Hkv === 1 ? outs[0] : g.op('Concat', outs, { axis: 0 }), g.ints([Hq, -1, D])]); // [Hq, qt, D]
  g.output(g.op('Reshape', [g.op('Transpose', [o], { perm: [1, 0, 2] }), g.ints([0, Hq * D])]), 'out', 'float', ['qt', Hq * D]);
  return g.encode();
}

/** x^p elementwise: by repeated squaring for a whole p up to 64 (a few multiplications), else Pow. */
function power(g: Graph, x: string, p: number): string {
  if (!Number.isInteger(p) || p > 64) return g.op('Pow', [x, g.scalar(p)]);
  let result: string | null = null;
  let square = x;
  for (let k = p; k > 0; k >>= 1) {
    if (k & 1) result = result ? g.op('Mul', [result, square]) : square;
    if (k > 1) square = g.op('Mul', [square, square]);
  }
  return result!;
}
