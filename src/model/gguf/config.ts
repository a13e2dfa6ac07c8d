// GGUF metadata → ctx's ModelConfig. The metadata is turned into the config.json a Hugging Face
// folder would carry and parsed by the same parseModelConfig, so both formats get the same checks.
//
//   general.architecture                  model_type (qwen2 or llama; others are refused by name)
//   <arch>.context_length                 max_position_embeddings
//   <arch>.embedding_length               hidden_size
//   <arch>.feed_forward_length            intermediate_size
//   <arch>.block_count                    num_hidden_layers
//   <arch>.attention.head_count(_kv)      num_attention_heads, num_key_value_heads
//   <arch>.attention.key_length           head_dim (value_length must match; rope.dimension_count too)
//   <arch>.attention.layer_norm_rms_epsilon  rms_norm_eps
//   <arch>.rope.freq_base                 rope_theta
//   <arch>.rope.scaling.*                 rope_scaling (linear, yarn)
//   rope_freqs.weight (llama 3.x)         rope_scaling llama3, recovered and checked value by value
//   token_embd.weight rows                vocab_size
//   output.weight absent                  tie_word_embeddings
//   attn_q.bias present                   attention_bias
//   tokenizer.ggml.{bos,eos,eot,eom}_token_id  bos_token_id, eos_token_id (all ids that end a turn)

import { CtxError } from '../../errors.js';
import { parseModelConfig, type ModelConfig } from '../config.js';
import { dequantize } from './blocks.js';
import type { GgufFile } from './file.js';

export const GGUF_ARCHITECTURES = ['qwen2', 'llama'] as const;

type Json = Record<string, unknown>;

/** The config.json equivalent of a GGUF file's metadata (exported for `ctx models info`-style listings). */
export function ggufConfigJson(file: GgufFile): Json {
  const arch = file.string('general.architecture');
  if (!(GGUF_ARCHITECTURES as readonly string[]).includes(arch)) {
    throw new CtxError('model', `GGUF architecture "${arch}" is not supported (ctx runs ${GGUF_ARCHITECTURES.join(', ')})`, { path: file.path });
  }
  const k = (key: string) => `${arch}.${key}`;
  const optional = (key: string, read: (key: string) => number) => (file.has(key) ? read(key) : undefined);
  const embd = file.tensors.get('token_embd.weight');
  if (!embd || embd.ne.length !== 2) throw new CtxError('model', 'GGUF file has no 2-D token_embd.weight', { path: file.path });

  const hidden = file.uint(k('embedding_length'));
  const heads = file.uint(k('attention.head_count'));
  const headDim = optional(k('attention.key_length'), (x) => file.uint(x)) ?? hidden / heads;
  const valueLength = optional(k('attention.value_length'), (x) => file.uint(x));
  if (valueLength !== undefined && valueLength !== headDim) {
    throw new CtxError('model', `GGUF attention.value_length ${valueLength} differs from key_length ${headDim}; ctx needs them equal`, { path: file.path });
  }
  const ropeDims = optional(k('rope.dimension_count'), (x) => file.uint(x));
  if (ropeDims !== undefined && ropeDims !== headDim) {
    throw new CtxError('model', `GGUF rope.dimension_count ${ropeDims} is not the head size ${headDim}; ctx applies RoPE to whole heads`, { path: file.path });
  }
  const ropeTheta = optional(k('rope.freq_base'), (x) => file.number(x)) ?? 10000;
  const contextLength = file.uint(k('context_length'));

  const eos = ['eos', 'eot', 'eom']
    .map((t) => `tokenizer.ggml.${t}_token_id`)
    .filter((key) => file.has(key))
    .map((key) => file.uint(key));
  return {
    model_type: arch,
    vocab_size: embd.ne[1],
    hidden_size: hidden,
    intermediate_size: file.uint(k('feed_forward_length')),
    num_hidden_layers: file.uint(k('block_count')),
    num_attention_heads: heads,
    num_key_value_heads: optional(k('attention.head_count_kv'), (x) => file.uint(x)) ?? heads,
    head_dim: headDim,
    rms_norm_eps: file.number(k('attention.layer_norm_rms_epsilon')),
    rope_theta: ropeTheta,
    rope_scaling: ropeScaling(file, arch, headDim, ropeTheta, contextLength),
    max_position_embeddings: contextLength,
    tie_word_embeddings: !file.tensors.has('output.weight'),
    attention_bias: file.tensors.has('blk.0.attn_q.bias'),
    hidden_act: 'silu',
    bos_token_id: file.has('tokenizer.ggml.bos_token_id') ? file.uint('tokenizer.ggml.bos_token_id') : null,
    eos_token_id: [...new Set(eos)],
  };
}

/** The model's ModelConfig, read from GGUF metadata. */
export function ggufModelConfig(file: GgufFile): ModelConfig {
  return parseModelConfig(ggufConfigJson(file), file.path);
}

function ropeScaling(file: GgufFile, arch: string, headDim: number, theta: number, contextLength: number): Json | null {
  const k = (key: string) => `${arch}.rope.scaling.${key}`;
  const type = file.has(k('type')) ? file.string(k('type')) : 'none';
  const factor = file.has(k('factor')) ? file.number(k('factor')) : 1;
  const original = file.has(k('original_context_length')) ? file.uint(k('original_context_length')) : contextLength;
  const freqs = file.tensors.get('rope_freqs.weight');
  if (freqs) {
    if (type !== 'none') throw new CtxError('model', `GGUF has both rope_freqs.weight and rope scaling "${type}"`, { path: file.path });
    return llama3FromRopeFreqs(file, headDim, theta);
  }
  switch (type) {
    case 'none':
      return null;
    case 'linear':
      return { rope_type: 'linear', factor };
    case 'yarn':
      return {
        rope_type: 'yarn',
        factor,
        original_max_position_embeddings: original,
        beta_fast: file.has(k('yarn_beta_fast')) ? file.number(k('yarn_beta_fast')) : 32,
        beta_slow: file.has(k('yarn_beta_slow')) ? file.number(k('yarn_beta_slow')) : 1,
      };
    default:
      throw new CtxError('model', `GGUF rope scaling "${type}" is not supported (ctx reads none, linear, yarn and llama 3's rope_freqs)`, { path: file.path });
  }
}

/**
 * Llama 3.1+ files carry their RoPE scaling as one divisor per frequency (rope_freqs.weight, F32
 * [headDim/2]) instead of parameters. The divisors are 1 for high frequencies, `factor` for low
 * ones and a smooth blend between, set by (low_freq_factor, high_freq_factor, original context).
 * Every Llama 3.x release uses low 1, high 4, original 8192 with factor 8 or 32; those parameters
 * are taken when they reproduce every stored divisor (to float32 rounding), and the file is refused otherwise.
 */
function llama3FromRopeFreqs(file: GgufFile, headDim: number, theta: number): Json {
  const t = file.tensors.get('rope_freqs.weight')!;
  if (t.type !== 'F32' || t.ne.length !== 1 || t.ne[0] !== headDim / 2) {
    throw new CtxError('model', `rope_freqs.weight should be F32 [${headDim / 2}], is ${t.type} [${t.ne}]`, { path: file.path });
  }
  const stored = new Float32Array(t.ne[0]);
  dequantize('F32', file.readRange(t, 0, t.byteLength), 0, t.ne[0], stored);
  const factor = Math.max(...stored);
  const params = { factor, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
  const lowWavelen = params.original_max_position_embeddings / params.low_freq_factor;
  const highWavelen = params.original_max_position_embeddings / params.high_freq_factor;
  for (let i = 0; i < stored.length; i++) {
    const freq = 1 / theta ** ((2 * i) / headDim);
    const wavelen = (2 * Math.PI) / freq;
    let divisor: number;
    if (wavelen < highWavelen) divisor = 1;
    else if (wavelen > lowWavelen) divisor = factor;
    else {
      const smooth = (params.original_max_position_embeddings / wavelen - params.low_freq_factor) / (params.high_freq_factor - params.low_freq_factor);
      divisor = 1 / ((1 - smooth) / factor + smooth);
    }
    if (Math.abs(divisor - stored[i]) > 1e-5 * divisor) {
      throw new CtxError('model', `rope_freqs.weight[${i}] = ${stored[i]} is not llama 3's scaling (factor ${factor}, low 1, high 4, original 8192 give ${divisor})`, { path: file.path });
    }
  }
  return { rope_type: 'llama3', ...params };
}
