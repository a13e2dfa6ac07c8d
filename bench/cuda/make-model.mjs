#!/usr/bin/env node
// Writes a model folder in the shape of Qwen2-7B-Instruct with Activation Beacon projections
// (namespace-Pt/beacon-qwen-2-7b-instruct: v3 interleave, W = 2048, q/k/v beacon projections):
// config.json and a model.safetensors whose header lists every tensor (BF16) but whose data is a
// sparse hole. ctx's benchmark loads it with `randomWeightsSeed`, which fills the weights with
// seeded random values directly on the GPU, so nothing is read from the 15 GB of zeros and the file
// takes no disk space. Speed does not depend on the values.
//
//   node bench/cuda/make-model.mjs <out-dir>
import { closeSync, ftruncateSync, mkdirSync, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const QWEN2_7B = {
  vocab: 152064,
  hidden: 3584,
  intermediate: 18944,
  layers: 28,
  heads: 28,
  kvHeads: 4,
  maxPositions: 32768,
  ropeTheta: 1000000,
};

export function writeSparseModel(dir, s = QWEN2_7B) {
  mkdirSync(dir, { recursive: true });
  const D = s.hidden / s.heads;
  const tensors = [];
  const add = (name, shape) => tensors.push({ name, shape });
  add('model.embed_tokens.weight', [s.vocab, s.hidden]);
  add('model.beacon_embed_tokens.weight', [1, s.hidden]);
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, [s.hidden]);
    add(`${p}.post_attention_layernorm.weight`, [s.hidden]);
    for (const pre of ['', 'beacon_']) {
      for (const [name, out] of [['q', s.heads * D], ['k', s.kvHeads * D], ['v', s.kvHeads * D]]) {
        add(`${p}.self_attn.${pre}${name}_proj.weight`, [out, s.hidden]);
        add(`${p}.self_attn.${pre}${name}_proj.bias`, [out]);
      }
    }
    add(`${p}.self_attn.o_proj.weight`, [s.hidden, s.heads * D]);
    add(`${p}.mlp.gate_proj.weight`, [s.intermediate, s.hidden]);
    add(`${p}.mlp.up_proj.weight`, [s.intermediate, s.hidden]);
    add(`${p}.mlp.down_proj.weight`, [s.hidden, s.intermediate]);
  }
  add('model.norm.weight', [s.hidden]);
  add('lm_head.weight', [s.vocab, s.hidden]);

  const header = {};
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.shape.reduce((a, b) => a * b, 1) * 2;
    header[t.name] = { dtype: 'BF16', shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = Buffer.alloc(8 + json.length);
  head.writeBigUInt64LE(BigInt(json.length), 0);
  head.write(json, 8, 'utf8');
  const file = join(dir, 'model.safetensors');
  const fd = openSync(file, 'w');
  writeSync(fd, head);
  ftruncateSync(fd, head.length + offset); // the data section stays a hole
  closeSync(fd);

  const config = {
    model_type: 'qwen2',
    architectures: ['Qwen2ForCausalLM'],
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    hidden_act: 'silu',
    max_position_embeddings: s.maxPositions,
    rms_norm_eps: 1e-6,
    rope_theta: s.ropeTheta,
    tie_word_embeddings: false,
    bos_token_id: 151643,
    eos_token_id: 151645,
    torch_dtype: 'bfloat16',
    beacon_window: 2048,
    beacon_stride: 2048,
    beacon_attn: 'full-coverage',
    beacon_ratio: [2, 4, 8],
    beacon_ratio_mix: 'adapt-1024',
    beacon_param: ['q', 'k', 'v'],
    beacon_embed_init: 'eos',
    beacon_sink_size: 0,
    beacon_attend_prev: true,
    beacon_pos: 'interleave',
    beacon_parallel_window: 1,
  };
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  return { file, bytes: head.length + offset };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = process.argv[2];
  if (!out) {
    console.error('usage: node bench/cuda/make-model.mjs <out-dir>');
    process.exit(2);
  }
  const { file, bytes } = writeSparseModel(out);
  console.log(`wrote ${file} (${(bytes / 2 ** 30).toFixed(1)} GiB, sparse) and config.json`);
}
