// The ONNX graphs of the cpu backend, built from the model's config and the converted weights.
//
// A step runs, per layer, ONNX Runtime for everything with weights and the attention, and
// JavaScript only for the glue (RoPE, KV bookkeeping, selection, masks). The weight graphs are cut
// at the attention, so each weight lives in exactly one session (no duplicate prepacked copies):
//
//   first      x [n,H]                 -> qkv_0 [n, qDim + 2 kvDim]     (pre-RoPE q, k, v)
//   layer l    x [n,H], attn_l [n,qDim] -> x' [n,H]  (+ qkv_{l+1} when l < L-1)
//              x1 = x + attn_l Wo ;  x' = x1 + down(silu(gate(rms(x1))) ⊙ up(rms(x1)))
//              qkv_{l+1} = rms(x') Wqkv_{l+1} + b
//   head       x [m,H]                 -> logits [m,V] = rms(x) Wlm (+ b)
//   attention  (weight-free, attention.ts)  and  vote (weight-free, select.ts)
//
// The block's shape follows the config (config.ts BlockShape): LayerNorm with bias instead of rms,
// a GELU MLP down(gelu_tanh(up(h))), and the parallel layout of Phi-2, where one norm feeds both
// the attention and the MLP: layer l then computes x' = x + attn_l Wo + mlp(norm_l(x)).
//
// Checkpoints with beacon projections (Activation Beacon, FocusLLM's candidates): rows flagged
// `beacon` use them. The graphs take the
// raw and beacon row indices (rawIdx [nr], bcnIdx [nb]) and the inverse permutation `order` [n]:
//   y = Gather(Concat(h[rawIdx] W_base, h[bcnIdx] W_beacon), order)
// which handles nb = 0 (an empty Gather) with the same graph.
//
// Linear layers: f32 → Gemm(x, W[out,in], b, transB=1) (ORT prepacks W for MLAS);
// q8 / q4 (MLP and LM head, weights.ts) → com.microsoft.MatMulNBits(bits 8 or 4, block BLOCK,
// accuracy_level 4: int8 dot products with the activations quantized per block), then + b.
// GGUF sources (gguf-weights.ts) add: the file's block size and zero points; for Q4_K/Q5_K the
// mins term − ReduceSum(x by blocks) · minsᵀ; a linear stored in row blocks of different types
// (q/k/v of a Q4_K_M file) is the Concat of their products.
// (accuracy_level 1, float32 activations, would be more exact, but ORT 1.30 then dequantizes the
// whole matrix on every call: 35 ms for one 896×4864 row-vector product instead of 0.2 ms.)

import type { ModelConfig } from '../../model/config.js';
import { beaconParams } from '../../model/tensors.js';
import { Graph } from './graph.js';
import { storedLinear, type Layout, type StoredTensor } from './weights.js';

export interface GraphSet {
  first: Uint8Array;
  layers: Uint8Array[];
  head: Uint8Array;
}

class WeightGraph extends Graph {
  constructor(
    name: string,
    private readonly layout: Layout,
    private readonly c: ModelConfig,
    private readonly accuracy: NBitsAccuracy,
  ) {
    super(name);
  }

  private stored(name: string, t: StoredTensor): string {
    return this.weight(name, { dataType: t.dataType, dims: t.dims, location: this.layout.file, offset: t.offset, length: t.length });
  }

  vector(name: string): string {
    return this.stored(name, this.layout.tensors[name]);
  }

  /** y = x Wᵀ + b for the stored linear layer `name`; x [rows, in] → [rows, out]. */
  linear(x: string, name: string): string {
    const s = storedLinear(this.layout, name);
    if (s.kind === 'parts') return this.op('Concat', s.parts.map((p) => this.linear(x, p)), { axis: -1 });
    if (s.kind === 'f32') {
      const inputs = [x, this.stored(name, s.w)];
      if (s.bias) inputs.push(this.stored(`${name}.bias`, s.bias));
      return this.op('Gemm', inputs, { transB: 1 });
    }
    const inputs = [x, this.stored(`${name}.q`, s.q), this.stored(`${name}.scales`, s.scales)];
    if (s.zeroPoints) inputs.push(this.stored(`${name}.zp`, s.zeroPoints));
    let y = this.op('MatMulNBits', inputs, { K: s.in, N: s.out, bits: s.bits, block_size: s.blockSize, accuracy_level: this.accuracy }, { domain: 'com.microsoft' });
    // GGUF K-quants: the per-block mins term, −blockSums(x) · minsᵀ (gguf-weights.ts).
    if (s.mins) y = this.op('Sub', [y, this.op('Gemm', [this.blockSums(x, s.in, s.blockSize), this.stored(`${name}.mins`, s.mins)], { transB: 1 })]);
    if (s.bias) y = this.op('Add', [y, this.stored(`${name}.bias`, s.bias)]);
    return y;
  }

  private readonly sums = new Map<string, string>();

  /** x [rows, K] summed over blocks of `blockSize` along K: [rows, K / blockSize] (once per x and block size). */
  private blockSums(x: string, K: number, blockSize: number): string {
    const key = `${x}/${blockSize}`;
    let s = this.sums.get(key);
    if (!s) {
      s = this.op('ReduceSum', [this.op('Reshape', [x, this.ints([-1, K / blockSize, blockSize])]), this.ints([2])], { keepdims: 0 });
      this.sums.set(key, s);
    }
    return s;
  }

  /** The block's norm over the last axis: w ⊙ x / sqrt(mean(x²) + eps), or LayerNorm with its bias. */
  norm(x: string, weight: string): string {
    const attrs = { axis: -1, epsilon: { float: this.c.rmsNormEps }, stash_type: 1 };
    if (this.c.block.norm === 'layer') return this.op('LayerNormalization', [x, this.vector(weight), this.vector(`${weight}.bias`)], attrs);
    return this.op('SimplifiedLayerNormalization', [x, this.vector(weight)], attrs);
  }

  /** The MLP of layer l on h [rows, H]: down(silu(gate(h)) ⊙ up(h)), or down(gelu_tanh(up(h))). */
  mlp(h: string, l: number): string {
    if (this.c.block.mlp === 'gelu_tanh') return this.linear(this.op('Gelu', [this.linear(h, `${l}.up`)], { approximate: 'tanh' }), `${l}.down`);
    const gate = this.linear(h, `${l}.gate`);
    const up = this.linear(h, `${l}.up`);
    return this.linear(this.op('Mul', [this.op('Mul', [gate, this.op('Sigmoid', [gate])]), up]), `${l}.down`);
  }

  /** The beacon row-split inputs (beacon checkpoints only). */
  beaconInputs(): { rawIdx: string; bcnIdx: string; order: string } {
    return {
      rawIdx: this.input('rawIdx', 'int64', ['nr']),
      bcnIdx: this.input('bcnIdx', 'int64', ['nb']),
      order: this.input('order', 'int64', ['n']),
    };
  }

  /** A linear layer where beacon rows use `beaconName` (when given) and the others `name`. */
  mixedLinear(x: string, name: string, beaconName: string | null, split: { rawIdx: string; bcnIdx: string; order: string } | null): string {
    if (!beaconName || !split) return this.linear(x, name);
    const raw = this.linear(this.op('Gather', [x, split.rawIdx], { axis: 0 }), name);
    const bcn = this.linear(this.op('Gather', [x, split.bcnIdx], { axis: 0 }), beaconName);
    return this.op('Gather', [this.op('Concat', [raw, bcn], { axis: 0 }), split.order], { axis: 0 });
  }
}

/** The widths of a qkv row: q [0, qDim), k [qDim, qDim + kvDim), v after. */
export function qkvWidth(c: ModelConfig): number {
  return (c.numHeads + 2 * c.numKvHeads) * c.headDim;
}

/**
 * MatMulNBits' accuracy_level: 4 (int8 activations) is how the backend runs; 1 (float32
 * activations) multiplies by exactly the stored weights, which tests use to check a quantized
 * model's graphs against the reference to float32 rounding.
 */
export type NBitsAccuracy = 1 | 4;

export function buildWeightGraphs(c: ModelConfig, layout: Layout, accuracy: NBitsAccuracy = 4): GraphSet {
  const H = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const W = qkvWidth(c);
  const beacon = beaconParams(c) !== null;
  const has = (name: string) => name in layout.linears;

  const qkvOf = (g: WeightGraph, x: string, l: number, split: ReturnType<WeightGraph['beaconInputs']> | null) =>
    g.mixedLinear(g.norm(x, `${l}.inputNorm`), `${l}.qkv`, beacon ? `${l}.beaconQkv` : null, split);

  // first: the qkv projection of layer 0.
  const first = new WeightGraph('first', layout, c, accuracy);
  {
    const x = first.input('x', 'float', ['n', H]);
    const split = beacon ? first.beaconInputs() : null;
    first.output(qkvOf(first, x, 0, split), 'qkv', 'float', ['n', W]);
  }

  const layers: Uint8Array[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const g = new WeightGraph(`layer${l}`, layout, c, accuracy);
    const x = g.input('x', 'float', ['n', H]);
    const attn = g.input('attn', 'float', ['n', qDim]);
    const split = beacon ? g.beaconInputs() : null;
    const x1 = g.op('Add', [x, g.mixedLinear(attn, `${l}.o`, has(`${l}.beaconO`) ? `${l}.beaconO` : null, split)]);
    // Parallel blocks: the MLP reads the norm of the layer's input x (recomputed here: it is cheap).
    const h = c.block.parallel ? g.norm(x, `${l}.inputNorm`) : g.norm(x1, `${l}.postNorm`);
    const x2 = g.op('Add', [x1, g.mlp(h, l)]);
    g.output(x2, 'xout', 'float', ['n', H]);
    if (l + 1 < c.numLayers) g.output(qkvOf(g, x2, l + 1, split), 'qkv', 'float', ['n', W]);
    layers.push(g.encode());
  }

  const head = new WeightGraph('head', layout, c, accuracy);
  {
    const x = head.input('x', 'float', ['m', H]);
    head.output(head.linear(head.norm(x, 'finalNorm'), 'lmHead'), 'logits', 'float', ['m', c.vocabSize]);
  }
  return { first: first.encode(), layers, head: head.encode() };
}
