// llama.cpp's tensor names ↔ ctx's (Hugging Face) names, and the row order llama.cpp's converter
// gives the q/k projections of llama-architecture models.
//
// Names, per layer N:
//   token_embd.weight          model.embed_tokens.weight
//   blk.N.attn_norm.weight     model.layers.N.input_layernorm.weight
//   blk.N.attn_{q,k,v}.weight  model.layers.N.self_attn.{q,k,v}_proj.weight   (+ .bias)
//   blk.N.attn_output.weight   model.layers.N.self_attn.o_proj.weight
//   blk.N.ffn_norm.weight      model.layers.N.post_attention_layernorm.weight
//   blk.N.ffn_{gate,up,down}.weight  model.layers.N.mlp.{gate,up,down}_proj.weight
//   output_norm.weight         model.norm.weight
//   output.weight              lm_head.weight   (absent when the embedding is tied)
//
// Row order: for llama (not qwen2) the converter reorders the rows of q_proj and k_proj (weight and
// bias) within each head, from Hugging Face's rotate-half RoPE layout (the first half of a head's
// dimensions pairs with the second half) to ggml's interleaved one (dimension pairs 2i, 2i + 1).
// GGUF row 2i + j of a head is Hugging Face row j · headDim/2 + i (j = 0, 1). ctx applies RoPE the
// Hugging Face way, so it reads those rows back in Hugging Face order.

const GLOBAL: Record<string, string> = {
  'token_embd.weight': 'model.embed_tokens.weight',
  'output_norm.weight': 'model.norm.weight',
  'output.weight': 'lm_head.weight',
};

const PER_LAYER: Record<string, string> = {
  'attn_norm.weight': 'input_layernorm.weight',
  'attn_q.weight': 'self_attn.q_proj.weight',
  'attn_q.bias': 'self_attn.q_proj.bias',
  'attn_k.weight': 'self_attn.k_proj.weight',
  'attn_k.bias': 'self_attn.k_proj.bias',
  'attn_v.weight': 'self_attn.v_proj.weight',
  'attn_v.bias': 'self_attn.v_proj.bias',
  'attn_output.weight': 'self_attn.o_proj.weight',
  'ffn_norm.weight': 'post_attention_layernorm.weight',
  'ffn_gate.weight': 'mlp.gate_proj.weight',
  'ffn_up.weight': 'mlp.up_proj.weight',
  'ffn_down.weight': 'mlp.down_proj.weight',
};

const HF_GLOBAL = Object.fromEntries(Object.entries(GLOBAL).map(([g, h]) => [h, g]));
const HF_PER_LAYER = Object.fromEntries(Object.entries(PER_LAYER).map(([g, h]) => [h, g]));

/** The Hugging Face name of a GGUF tensor, or null for tensors ctx does not use (e.g. rope_freqs.weight). */
export function hfName(ggufName: string): string | null {
  if (ggufName in GLOBAL) return GLOBAL[ggufName];
  const m = /^blk\.(\d+)\.(.+)$/.exec(ggufName);
  if (m && m[2] in PER_LAYER) return `model.layers.${Number(m[1])}.${PER_LAYER[m[2]]}`;
  return null;
}

/** The GGUF name of a Hugging Face tensor, or null when llama.cpp has no name for it. */
export function ggufName(hf: string): string | null {
  if (hf in HF_GLOBAL) return HF_GLOBAL[hf];
  const m = /^model\.layers\.(\d+)\.(.+)$/.exec(hf);
  if (m && m[2] in HF_PER_LAYER) return `blk.${Number(m[1])}.${HF_PER_LAYER[m[2]]}`;
  return null;
}

/** Heads whose rows llama.cpp reorders for this tensor (q: all heads, k: kv heads), or null for none. */
export function reorderedHeads(arch: string, hf: string, numHeads: number, numKvHeads: number): number | null {
  if (arch !== 'llama') return null;
  if (/\.self_attn\.q_proj\.(weight|bias)$/.test(hf)) return numHeads;
  if (/\.self_attn\.k_proj\.(weight|bias)$/.test(hf)) return numKvHeads;
  return null;
}

/**
 * For a tensor of `rows` rows in `heads` heads: hfToGguf[r] is the GGUF row that holds Hugging Face
 * row r. (The converter's direction is the inverse: GGUF row g holds Hugging Face row ggufToHf[g].)
 */
export function llamaRowOrder(rows: number, heads: number): { hfToGguf: Int32Array; ggufToHf: Int32Array } {
  if (rows % heads !== 0 || (rows / heads) % 2 !== 0) throw new Error(`cannot split ${rows} rows into ${heads} heads of even size`);
  const headDim = rows / heads;
  const half = headDim / 2;
  const hfToGguf = new Int32Array(rows);
  const ggufToHf = new Int32Array(rows);
  for (let h = 0; h < heads; h++) {
    for (let j = 0; j < 2; j++) {
      for (let i = 0; i < half; i++) {
        const hf = h * headDim + j * half + i;
        const g = h * headDim + 2 * i + j;
        hfToGguf[hf] = g;
        ggufToHf[g] = hf;
      }
    }
  }
  return { hfToGguf, ggufToHf };
}
