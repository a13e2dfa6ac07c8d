// Deterministic random-weight models in Hugging Face layout, for tests, fixtures and benchmarks.
// Speed does not depend on weight values, so benchmarks use these in the shapes of real models.
//
//   node --import tsx tools/random-model.ts <out-dir> [--preset tiny|tiny-beacon|tiny-beacon-v1|tiny-focus|tiny-clex|qwen2.5-0.5b|qwen2.5-0.5b-beacon] [--seed N] [--dtype F32|F16|BF16]

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '../src/demo/rng.js';
import { writeSafetensors, type TensorToWrite } from '../src/model/safetensors-write.js';
import { softplusConfigKeys, type SoftplusAttention } from '../src/model/softplus-config.js';

export interface RandomModelSpec {
  arch: 'qwen2' | 'llama';
  vocab: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  maxPositions: number;
  ropeTheta?: number;
  tie?: boolean;
  /** Beacon checkpoint: v3 (interleave) or v1 (append, q/k/v/o). */
  beacon?: { version: 'v3' | 'v1'; window: number; stride?: number; ratios: number[]; ratioMix?: string; sinkSize?: number; attn?: string };
  /**
   * FocusLLM checkpoint: random candidate projections beacon_{q,k,v}(+o)_proj and a (never read)
   * beacon_embed_tokens; config local_window, memory_stride, beacon_param and ctx's chunking threshold.
   */
  focus?: { localWindow: number; stride: number; shortPromptLimit: number; param?: string[] };
  /**
   * A CLEX checkpoint (arXiv 2310.16450): the three model.clex_layer tensors and the config keys of
   * the released CLEX models (rope_scaling type "clex", log_scale, use_flashattn, ...).
   */
  clex?: { maxFactor: number; paramFactor?: number; act?: 'tanh' | 'silu'; logScale?: boolean };
  /** Softplus attention instead of softmax (src/model/softplus-config.ts). */
  softplus?: SoftplusAttention;
  seed?: number;
  dtype?: 'F32' | 'F16' | 'BF16';
  bos?: number;
  eos?: number;
}

export const PRESETS: Record<string, RandomModelSpec> = {
  tiny: { arch: 'qwen2', vocab: 320, hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2, maxPositions: 128 },
  'tiny-beacon': {
    arch: 'qwen2', vocab: 320, hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2, maxPositions: 128,
    beacon: { version: 'v3', window: 32, ratios: [2, 4, 8], ratioMix: 'adapt-64' },
  },
  'tiny-beacon-v1': {
    arch: 'llama', vocab: 320, hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2, maxPositions: 128,
    beacon: { version: 'v1', window: 32, stride: 16, ratios: [4], attn: 'step-expansion' },
  },
  'tiny-focus': {
    arch: 'llama', vocab: 320, hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2, maxPositions: 128,
    focus: { localWindow: 32, stride: 24, shortPromptLimit: 96 },
  },
  // CLEX on a Llama base: window 64, reach 64 × 8 = 512 tokens.
  'tiny-clex': {
    arch: 'llama', vocab: 320, hidden: 32, intermediate: 64, layers: 2, heads: 4, kvHeads: 2, maxPositions: 64,
    clex: { maxFactor: 8, paramFactor: 1, act: 'tanh' },
  },
  'qwen2.5-0.5b': { arch: 'qwen2', vocab: 151936, hidden: 896, intermediate: 4864, layers: 24, heads: 14, kvHeads: 2, maxPositions: 32768, ropeTheta: 1000000, tie: true },
  'qwen2.5-0.5b-beacon': {
    arch: 'qwen2', vocab: 151936, hidden: 896, intermediate: 4864, layers: 24, heads: 14, kvHeads: 2, maxPositions: 32768, ropeTheta: 1000000, tie: true,
    beacon: { version: 'v3', window: 2048, ratios: [2, 4, 8], ratioMix: 'adapt-1024' },
  },
};

/** n samples of N(0, std²) (Box–Muller). */
export function normal(rand: () => number, n: number, std: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(rand(), 1e-12);
    const v = rand();
    const r = std * Math.sqrt(-2 * Math.log(u));
    out[i] = r * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * v);
  }
  return out;
}

export function writeRandomModel(dir: string, spec: RandomModelSpec): void {
  mkdirSync(dir, { recursive: true });
  const s = spec;
  const D = s.hidden / s.heads;
  const rand = mulberry32(s.seed ?? 1);
  const lin = 1.6 / Math.sqrt(s.hidden);
  const tensors: TensorToWrite[] = [];
  const add = (name: string, shape: number[], data: Float32Array) => tensors.push({ name, shape, data, dtype: s.dtype });
  const norm = (n: number) => Float32Array.from({ length: n }, () => 1 + (rand() - 0.5) * 0.5);
  const qkvBias = s.arch === 'qwen2';
  add('model.embed_tokens.weight', [s.vocab, s.hidden], normal(rand, s.vocab * s.hidden, 1));
  if (s.beacon || s.focus) add('model.beacon_embed_tokens.weight', [1, s.hidden], normal(rand, s.hidden, 1));
  const focusParam = s.focus ? s.focus.param ?? ['q', 'k', 'v', 'o'] : [];
  const projs: Array<[string, number, number]> = [['q', s.heads * D, s.hidden], ['k', s.kvHeads * D, s.hidden], ['v', s.kvHeads * D, s.hidden]];
  for (let l = 0; l < s.layers; l++) {
    const p = `model.layers.${l}`;
    add(`${p}.input_layernorm.weight`, [s.hidden], norm(s.hidden));
    add(`${p}.post_attention_layernorm.weight`, [s.hidden], norm(s.hidden));
    const prefixes = s.beacon || s.focus ? ['', 'beacon_'] : [''];
    for (const pre of prefixes) {
      for (const [name, out, inp] of projs) {
        if (pre && s.focus && !focusParam.includes(name)) continue;
        add(`${p}.self_attn.${pre}${name}_proj.weight`, [out, inp], normal(rand, out * inp, lin));
        if (qkvBias) add(`${p}.self_attn.${pre}${name}_proj.bias`, [out], normal(rand, out, 0.2));
      }
    }
    add(`${p}.self_attn.o_proj.weight`, [s.hidden, s.heads * D], normal(rand, s.hidden * s.heads * D, lin));
    if (s.beacon?.version === 'v1' || focusParam.includes('o')) add(`${p}.self_attn.beacon_o_proj.weight`, [s.hidden, s.heads * D], normal(rand, s.hidden * s.heads * D, lin));
    add(`${p}.mlp.gate_proj.weight`, [s.intermediate, s.hidden], normal(rand, s.intermediate * s.hidden, lin));
    add(`${p}.mlp.up_proj.weight`, [s.intermediate, s.hidden], normal(rand, s.intermediate * s.hidden, lin));
    add(`${p}.mlp.down_proj.weight`, [s.hidden, s.intermediate], normal(rand, s.hidden * s.intermediate, 1.6 / Math.sqrt(s.intermediate)));
  }
  add('model.norm.weight', [s.hidden], norm(s.hidden));
  if (!s.tie) add('lm_head.weight', [s.vocab, s.hidden], normal(rand, s.vocab * s.hidden, 2.5 / Math.sqrt(s.hidden)));
  if (s.clex) {
    // inv_freq as the official layer stores it (θ^(−2i/D) in float32); the ODE weights random but
    // small (as in ../shared/golden-seeds), so the learned term moves f(t) away from plain NTK.
    const half = D / 2;
    const width = (s.clex.paramFactor ?? 1) * D;
    const theta = s.ropeTheta ?? 10000;
    const invFreq = Float32Array.from({ length: half }, (_, i) => Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / D)))));
    tensors.push({ name: 'model.clex_layer.inv_freq', shape: [half], data: invFreq, dtype: 'F32' });
    tensors.push({ name: 'model.clex_layer.proj_func.ode_up_proj', shape: [half, width], data: normal(rand, half * width, 0.1 / Math.sqrt(half)), dtype: 'F32' });
    tensors.push({ name: 'model.clex_layer.proj_func.ode_down_proj', shape: [width, half], data: normal(rand, width * half, 0.1 / Math.sqrt(width)), dtype: 'F32' });
  }
  writeSafetensors(join(dir, 'model.safetensors'), tensors);

  const config: Record<string, unknown> = {
    model_type: s.arch,
    architectures: [s.arch === 'qwen2' ? 'Qwen2ForCausalLM' : 'LlamaForCausalLM'],
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    hidden_act: 'silu',
    max_position_embeddings: s.maxPositions,
    rms_norm_eps: 1e-6,
    rope_theta: s.ropeTheta ?? 10000,
    rope_scaling: null,
    tie_word_embeddings: Boolean(s.tie),
    bos_token_id: s.bos ?? 1,
    eos_token_id: s.eos ?? 2,
    torch_dtype: 'float32',
  };
  if (s.beacon) Object.assign(config, beaconConfigKeys(s.beacon));
  if (s.focus) {
    Object.assign(config, {
      local_window: s.focus.localWindow,
      memory_stride: [s.focus.stride],
      beacon_param: focusParam,
      focus_short_prompt_limit: s.focus.shortPromptLimit,
      focus_bos_token_id: s.bos ?? 1,
    });
  }
  if (s.clex) Object.assign(config, clexConfigKeys(s.clex, s.maxPositions));
  if (s.softplus) Object.assign(config, softplusConfigKeys(s.softplus));
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}

/** The config.json keys of a released CLEX checkpoint (CLEX.md §2); `factor` is unused but required by the official code. */
export function clexConfigKeys(c: NonNullable<RandomModelSpec['clex']>, maxPositions: number): Record<string, unknown> {
  return {
    rope_scaling: { type: 'clex', factor: 1, max_factor: c.maxFactor, param_factor: c.paramFactor ?? 1, time_dt: 0.01, act: c.act ?? 'tanh' },
    log_scale: Boolean(c.logScale),
    use_flashattn: Boolean(c.logScale),
    pretraining_tp: 1,
    data_length: maxPositions,
  };
}

/** The `beacon_*` config.json keys of a v3 (interleave) or v1 (append) beacon checkpoint. */
export function beaconConfigKeys(b: NonNullable<RandomModelSpec['beacon']>): Record<string, unknown> {
  if (b.version === 'v3') {
    return {
      beacon_window: b.window,
      beacon_stride: b.window,
      beacon_attn: 'full-coverage',
      beacon_ratio: b.ratios,
      beacon_ratio_mix: b.ratioMix ?? 'adapt-1024',
      beacon_param: ['q', 'k', 'v'],
      beacon_embed_init: 'eos',
      beacon_sink_size: b.sinkSize ?? 0,
      beacon_attend_prev: true,
      beacon_pos: 'interleave',
      beacon_parallel_window: 1,
    };
  }
  return {
    beacon_window: b.window,
    beacon_stride: [b.stride ?? b.window],
    beacon_stride_mix: 'step-random',
    beacon_attn: b.attn ?? 'step-expansion',
    beacon_attend_previous: true,
    beacon_ratio: b.ratios,
    beacon_ratio_mix: b.ratioMix ?? 'step-random',
    beacon_param: ['q', 'k', 'v', 'o'],
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const out = args.find((a) => !a.startsWith('--'));
  const opt = (k: string) => {
    const i = args.indexOf(`--${k}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const preset = opt('preset') ?? 'tiny';
  if (!out || !PRESETS[preset]) {
    console.error(`usage: tools/random-model.ts <out-dir> [--preset ${Object.keys(PRESETS).join('|')}] [--seed N] [--dtype F32|F16|BF16]`);
    process.exit(2);
  }
  writeRandomModel(out, { ...PRESETS[preset], seed: Number(opt('seed') ?? 1), dtype: (opt('dtype') as RandomModelSpec['dtype']) ?? 'F32' });
  console.log(`wrote ${preset} to ${out}`);
}
