// The GGUF benchmark's models: random weights in the shapes of Qwen2.5-0.5B and Qwen2.5-1.5B,
// written straight into a Q4_K_M GGUF file (llama.cpp's choice of types per tensor: q4kmType), with
// the real Qwen tokenizer in the metadata. Written directly, row block by row block, because a
// float32 safetensors copy of the 1.5B model would take 6 GB. The weights follow
// tools/random-model.ts's scales (speed does not depend on their values).

import { existsSync, readFileSync } from 'node:fs';
import { parseModelConfig, type ModelConfig } from '../../src/model/config.js';
import { mulberry32 } from '../../src/demo/rng.js';
import { bpeTokenizerMetadata, ggufModelMetadata, q4kmType } from '../../src/model/gguf/from-model.js';
import { GGML_TYPES } from '../../src/model/gguf/ggml-types.js';
import { ggufName } from '../../src/model/gguf/names.js';
import { quantize } from '../../src/model/gguf/quantize.js';
import { gv, writeGguf, type GgufTensorToWrite } from '../../src/model/gguf/write.js';
import { normal } from '../../tools/random-model.js';

/** Hugging Face config.json keys of each benchmark shape. */
export const GGUF_SHAPES = {
  'qwen2.5-0.5b': { hidden_size: 896, num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, intermediate_size: 4864 },
  'qwen2.5-1.5b': { hidden_size: 1536, num_hidden_layers: 28, num_attention_heads: 12, num_key_value_heads: 2, intermediate_size: 8960 },
} as const;
export type GgufShape = keyof typeof GGUF_SHAPES;

export function shapeConfig(shape: GgufShape): ModelConfig {
  return parseModelConfig(
    {
      model_type: 'qwen2',
      vocab_size: 151936,
      max_position_embeddings: 32768,
      rope_theta: 1000000,
      rms_norm_eps: 1e-6,
      tie_word_embeddings: true,
      ...GGUF_SHAPES[shape],
    },
    shape,
  );
}

/** Writes the Q4_K_M file of `shape` at `path` unless it is there. */
export function writeQ4kmModel(shape: GgufShape, path: string, tokenizerJson: string, log: (s: string) => void): void {
  if (existsSync(path)) return;
  log(`writing ${path}`);
  const c = shapeConfig(shape);
  const H = c.hiddenSize;
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  const lin = 1.6 / Math.sqrt(H);
  const typeOf = q4kmType(c);
  const tensors: GgufTensorToWrite[] = [];
  let seed = 1;
  // One tensor: [rows, cols] normal(std) values (1 + U(−¼, ¼) for norms), written in blocks of rows.
  const add = (hf: string, shape: number[], std: number | 'norm') => {
    const type = typeOf(hf, shape);
    const rows = shape.length === 2 ? shape[0] : 1;
    const cols = shape[shape.length - 1];
    const tensorSeed = seed++;
    if (cols % GGML_TYPES[type].blockValues !== 0) throw new Error(`${hf}: rows of ${cols} cannot be ${type}`);
    tensors.push({
      name: ggufName(hf)!,
      ne: [...shape].reverse(),
      type,
      data: () =>
        (function* () {
          const rand = mulberry32(tensorSeed);
          const step = Math.max(1, Math.floor((4 << 20) / (cols * 4)));
          for (let r = 0; r < rows; r += step) {
            const n = Math.min(step, rows - r) * cols;
            const values = std === 'norm' ? Float32Array.from({ length: n }, () => 1 + (rand() - 0.5) * 0.5) : normal(rand, n, std);
            yield quantize(type, values);
          }
        })(),
    });
  };
  add('model.embed_tokens.weight', [c.vocabSize, H], 1);
  for (let l = 0; l < c.numLayers; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, [H], 'norm');
    add(`${p}.post_attention_layernorm.weight`, [H], 'norm');
    for (const [k, out] of [['q', qDim], ['k', kvDim], ['v', kvDim]] as const) {
      add(`${p}.self_attn.${k}_proj.weight`, [out, H], lin);
      add(`${p}.self_attn.${k}_proj.bias`, [out], 0.2);
    }
    add(`${p}.self_attn.o_proj.weight`, [H, qDim], lin);
    add(`${p}.mlp.gate_proj.weight`, [c.intermediateSize, H], lin);
    add(`${p}.mlp.up_proj.weight`, [c.intermediateSize, H], lin);
    add(`${p}.mlp.down_proj.weight`, [H, c.intermediateSize], 1.6 / Math.sqrt(c.intermediateSize));
  }
  add('model.norm.weight', [H], 'norm');

  const { meta } = ggufModelMetadata(c);
  const tokenizer = bpeTokenizerMetadata(tokenizerJson, c.vocabSize, 'qwen2', {
    eos: '<|im_end|>',
    chatTemplate: JSON.parse(readFileSync(tokenizerJson.replace(/tokenizer\.json$/, 'tokenizer_config.json'), 'utf8')).chat_template ?? undefined,
  });
  writeGguf(
    path,
    {
      'general.architecture': gv.str('qwen2'),
      'general.name': gv.str(`ctx-bench random ${shape} Q4_K_M`),
      'general.alignment': gv.u32(32),
      'general.file_type': gv.u32(15), // LLAMA_FTYPE_MOSTLY_Q4_K_M
      ...meta,
      ...tokenizer,
    },
    tensors,
  );
}
