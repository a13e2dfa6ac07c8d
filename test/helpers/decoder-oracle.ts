// The parts of a Qwen2 / Llama decoder that the tests' hand-written oracles share: the weight table
// (every tensor once, float32) and everything around attention — q/k/v projections, o projection
// and residual, the MLP block, the final norm and LM head — for one token at a time. Each oracle
// writes its own attention, the part it checks.

import { linear, rmsNorm, silu } from '../../src/backend/reference/math.js';
import type { ModelConfig } from '../../src/model/config.js';

/** Reads a tensor as float32; `has` says whether an optional one (a bias) is present. */
export interface Float32Weights {
  has(name: string): boolean;
  float32(name: string): Float32Array;
}

export interface OracleLayer {
  inNorm: Float32Array; // [H]
  postNorm: Float32Array; // [H]
  q: { w: Float32Array; b?: Float32Array }; // [Hq·D, H], [Hq·D]
  k: { w: Float32Array; b?: Float32Array }; // [Hkv·D, H], [Hkv·D]
  v: { w: Float32Array; b?: Float32Array }; // [Hkv·D, H], [Hkv·D]
  o: { w: Float32Array; b?: Float32Array }; // [H, Hq·D], [H]
  gate: Float32Array; // [I, H]
  up: Float32Array; // [I, H]
  down: Float32Array; // [H, I]
  /** Every token's key and value as the oracle stores them (each [Hkv·D]). */
  keys: Float32Array[];
  values: Float32Array[];
}

export function oracleDecoder(c: ModelConfig, w: Float32Weights) {
  const { hiddenSize: H, numHeads: Hq, numKvHeads: Hkv, headDim: D, intermediateSize: I, vocabSize: V } = c;
  const layers: OracleLayer[] = Array.from({ length: c.numLayers }, (_, l) => {
    const p = `model.layers.${l}.`;
    const proj = (n: string) => ({ w: w.float32(`${p}self_attn.${n}_proj.weight`), b: w.has(`${p}self_attn.${n}_proj.bias`) ? w.float32(`${p}self_attn.${n}_proj.bias`) : undefined });
    return {
      inNorm: w.float32(`${p}input_layernorm.weight`), postNorm: w.float32(`${p}post_attention_layernorm.weight`),
      q: proj('q'), k: proj('k'), v: proj('v'), o: proj('o'),
      gate: w.float32(`${p}mlp.gate_proj.weight`), up: w.float32(`${p}mlp.up_proj.weight`), down: w.float32(`${p}mlp.down_proj.weight`),
      keys: [], values: [],
    };
  });
  const embed = w.float32('model.embed_tokens.weight'); // [V, H]
  const norm = w.float32('model.norm.weight'); // [H]
  const head = c.tieWordEmbeddings ? embed : w.float32('lm_head.weight'); // [V, H]
  const h = new Float32Array(H);

  return {
    layers,
    /** The token's embedding row, a fresh residual stream [H]. */
    embed: (token: number) => embed.slice(token * H, (token + 1) * H),
    /** Normed x projected to q [Hq·D], k and v [Hkv·D], before RoPE. */
    qkv(L: OracleLayer, x: Float32Array) {
      rmsNorm(x, 1, H, L.inNorm, c.rmsNormEps, h);
      const q = new Float32Array(Hq * D);
      const k = new Float32Array(Hkv * D);
      const v = new Float32Array(Hkv * D);
      linear(h, 1, H, L.q.w, L.q.b, Hq * D, q);
      linear(h, 1, H, L.k.w, L.k.b, Hkv * D, k);
      linear(h, 1, H, L.v.w, L.v.b, Hkv * D, v);
      return { q, k, v };
    },
    /** Adds the attention output [Hq·D] (through o_proj) and then the MLP block to x, in place. */
    finishLayer(L: OracleLayer, x: Float32Array, attn: Float32Array) {
      const out = new Float32Array(H);
      linear(attn, 1, Hq * D, L.o.w, L.o.b, H, out);
      for (let d = 0; d < H; d++) x[d] += out[d];
      rmsNorm(x, 1, H, L.postNorm, c.rmsNormEps, h);
      const gate = new Float32Array(I);
      const up = new Float32Array(I);
      linear(h, 1, H, L.gate, undefined, I, gate);
      linear(h, 1, H, L.up, undefined, I, up);
      for (let j = 0; j < I; j++) gate[j] = silu(gate[j]) * up[j];
      linear(gate, 1, I, L.down, undefined, H, out);
      for (let d = 0; d < H; d++) x[d] += out[d];
    },
    /** The final norm and LM head: logits [V]. */
    logits(x: Float32Array) {
      rmsNorm(x, 1, H, norm, c.rmsNormEps, h);
      const logits = new Float32Array(V);
      linear(h, 1, H, head, undefined, V, logits);
      return logits;
    },
  };
}
