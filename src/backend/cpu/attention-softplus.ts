// Softplus attention (../attention-softplus.ts, the formulas) as a weight-free ONNX graph over one
// tile of query rows: the softplus counterpart of attention.ts's `matmul` graph, with the same
// inputs (q, k_h, v_h, offset, bias) and output, run by the same tiling driver (`attend`).
//
// For qt query rows (rotated) against T keys (rotated), per KV head g (query heads G·g … G·g+G−1):
//   q̂, k̂     = q/‖q‖, k/‖k‖ per head vector (a zero vector stays 0)            [G·qt, D], [T, D]
//   C        = q̂ k̂ᵀ                     cosine similarities                      [G, qt, T]
//   n_i      = Σ_j visible_ij           the keys row i sees (from the mask: 0 visible, −∞ hidden)
//   E        = softplus(ln(D)·ln(n_i)·C), exactly 0 where hidden                  [G, qt, T]
//   A        = E / Σ_j E                LSSA (the sum is > 0: every visible term is)
//   LSSAR (power p, offset o, offset-free rows r0; p, o, r0 are constants of the graph):
//   X        = relu(n_i·A − o_i),  o_i = 0 when n_i ≤ r0, else o                 [G, qt, T]
//   R        = X / max_j X   (a row whose max is 0: 1 on its visible keys, i.e. uniform)
//   A        = R^p / Σ_j R^p            (x^p / Σ x^p without overflow; Σ ≥ 1)
//   O_g      = A V_g                                                                [G·qt, D]
//   out [qt, Hq·D] (row layout, ready for o_proj)
// n_i is the count of keys the mask lets row i see, so a row's length scale and offset follow
// exactly the keys it attends to, whatever the strategy (the rule in ../attention-softplus.ts).

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

  // x / ‖x‖ over the last axis; a zero vector stays zero (its cosine with anything is 0).
  const unit = (x: string) => {
    const norm = g.op('Sqrt', [g.op('ReduceSumSquare', [x, lastAxis], { keepdims: 1 })]);
    return g.op('Div', [x, g.op('Where', [g.op('Greater', [norm, zero]), norm, one])]);
  };

  // Which keys each row sees, and how many: n [qt, 1], the row's length scale ln(D)·ln(n) [qt, 1].
  const hidden = g.op('IsInf', [additiveMask(g, q, Tdim)]); // [qt, T] bool
  const visible = g.op('Cast', [g.op('Not', [hidden])], { to: 1 }); // [qt, T] float 0/1
  const n = g.op('ReduceSum', [visible, lastAxis], { keepdims: 1 }); // [qt, 1]
  const scale = g.op('Mul', [g.op('Log', [n]), g.scalar(Math.log(D))]);
  const rw = sp.reweight;
  const rowOffset = rw ? g.op('Where', [g.op('LessOrEqual', [n, g.scalar(rw.noOffsetFirstRows)]), zero, g.scalar(rw.offset)]) : null; // [qt, 1]

  // Queries [qt, Hq·D] → unit per head → [Hkv, G, qt, D] → per KV head [G·qt, D].
  const qUnit = g.op('Reshape', [unit(g.op('Reshape', [q, g.ints([0, Hq, D])])), g.ints([0, Hkv, G, D])]);
  const qh = g.op('Transpose', [qUnit], { perm: [1, 2, 0, 3] });
  const qs = Hkv === 1 ? [qh] : g.opN('Split', [qh, g.ints(Array(Hkv).fill(1))], Hkv, { axis: 0 });
  const byHead = g.op('Concat', [g.ints([G, -1]), Tdim], { axis: 0 }); // [G, qt, T]
  const flat = g.op('Concat', [g.ints([-1]), Tdim], { axis: 0 }); // [G·qt, T]
  const outs: string[] = [];
  for (let h = 0; h < Hkv; h++) {
    const qg = g.op('Reshape', [qs[h], g.ints([-1, D])]); // [G·qt, D]
    const cos = g.op('Reshape', [g.op('FusedMatMul', [qg, unit(keys[h])], { transB: 1 }, { domain: 'com.microsoft' }), byHead]); // [G, qt, T]
    const e = g.op('Where', [hidden, zero, g.op('Softplus', [g.op('Mul', [cos, scale])])]);
    let a = g.op('Div', [e, g.op('ReduceSum', [e, lastAxis], { keepdims: 1 })]);
    if (rw) {
      const x = g.op('Relu', [g.op('Sub', [g.op('Mul', [a, n]), rowOffset!])]);
      const xMax = g.op('ReduceMax', [x, lastAxis], { keepdims: 1 }); // [G, qt, 1]
      const positive = g.op('Greater', [xMax, zero]);
      const r = g.op('Where', [positive, g.op('Div', [x, g.op('Where', [positive, xMax, one])]), visible]);
      const w = g.op('Pow', [r, g.scalar(rw.p)]);
      a = g.op('Div', [w, g.op('ReduceSum', [w, lastAxis], { keepdims: 1 })]);
    }
    outs.push(g.op('MatMul', [g.op('Reshape', [a, flat]), values[h]])); // [G·qt, D]
  }
  const o = g.op('Reshape', [Hkv === 1 ? outs[0] : g.op('Concat', outs, { axis: 0 }), g.ints([Hq, -1, D])]); // [Hq, qt, D]
  g.output(g.op('Reshape', [g.op('Transpose', [o], { perm: [1, 0, 2] }), g.ints([0, Hq * D])]), 'out', 'float', ['qt', Hq * D]);
  return g.encode();
}
