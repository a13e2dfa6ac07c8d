// config.json → ModelConfig. Every architecture-specific fact lives in the ARCHITECTURES table;
// the rest of ctx reads only the normalised ModelConfig.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CtxError, fsError } from '../errors.js';
import { parseClexScaling, type ClexScaling } from './clex-config.js';
import { parseFocusSettings, type FocusSettings } from './focus-config.js';
import { parseSoftplusAttention, type SoftplusAttention } from './softplus-config.js';
import { LLAMA_DECODER, PHI_DECODER, type ArchTensors } from './tensors.js';

export type ArchName = 'qwen2' | 'llama' | 'mistral' | 'phi';

/** What differs between the decoder-only architectures ctx runs. */
interface ArchSpec {
  /** q/k/v projections carry a bias (Qwen2) unless config says otherwise (`attention_bias`). */
  qkvBias: boolean;
  /** HF class names that map to this architecture. */
  classes: string[];
  /** Its tensors (tensors.ts): what every loader reads and the model check verifies. */
  tensors: ArchTensors;
  /** How a decoder block is built from those tensors. */
  block: BlockShape;
  /** The `hidden_act` values that name the block's activation. */
  hiddenActs: string[];
}

/**
 * The shape of a decoder block, which the backends' math follows:
 *   norm      'rms':   w ⊙ x / sqrt(mean(x²) + eps)
 *             'layer': w ⊙ (x − mean(x)) / sqrt(var(x) + eps) + b          (LayerNorm with bias)
 *   mlp       'swiglu':    down(silu(gate(h)) ⊙ up(h))
 *             'gelu_tanh': down(gelu_tanh(up(h)))   gelu_tanh(v) = v/2 · (1 + tanh(√(2/π)·(v + 0.044715 v³)))
 *   parallel  false: x += attn(norm1(x)); x += mlp(norm2(x))     (Llama, Qwen2)
 *             true:  h = norm1(x); x += attn(h) + mlp(h)          (Phi-2: one norm per layer)
 */
export interface BlockShape {
  norm: 'rms' | 'layer';
  mlp: 'swiglu' | 'gelu_tanh';
  parallel: boolean;
}

const LLAMA_BLOCK: BlockShape = { norm: 'rms', mlp: 'swiglu', parallel: false };

export const ARCHITECTURES: Record<ArchName, ArchSpec> = {
  qwen2: { qkvBias: true, classes: ['Qwen2ForCausalLM'], tensors: LLAMA_DECODER, block: LLAMA_BLOCK, hiddenActs: ['silu'] },
  llama: { qkvBias: false, classes: ['LlamaForCausalLM'], tensors: LLAMA_DECODER, block: LLAMA_BLOCK, hiddenActs: ['silu'] },
  mistral: { qkvBias: false, classes: ['MistralForCausalLM'], tensors: LLAMA_DECODER, block: LLAMA_BLOCK, hiddenActs: ['silu'] },
  // Phi-2 (transformers' PhiForCausalLM): partial rotary (partial_rotary_factor), LayerNorm with bias,
  // parallel attention + MLP, gelu_new (= the tanh GELU), biases on every projection and the LM head.
  phi: {
    qkvBias: true,
    classes: ['PhiForCausalLM'],
    tensors: PHI_DECODER,
    block: { norm: 'layer', mlp: 'gelu_tanh', parallel: true },
    hiddenActs: ['gelu_new', 'gelu_pytorch_tanh'],
  },
};

/** The model's own RoPE scaling from config.json (`rope_scaling`). */
export type ModelRopeScaling =
  | { type: 'linear'; factor: number }
  | { type: 'dynamic'; factor: number }
  | { type: 'yarn'; factor: number; originalMaxPositions: number; betaFast: number; betaSlow: number; attentionFactor?: number }
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number }
  | ClexScaling;

/** Activation Beacon settings (ALGORITHMS.md §1.7), normalised over the v1 and v3 config keys. */
export interface BeaconConfig {
  /** v3 = interleave recipe (FlagEmbedding src/), v1 = append recipe (FlagEmbedding old/). */
  version: 'v1' | 'v3';
  pos: 'interleave' | 'append';
  attn: 'full-coverage' | 'step-expansion' | 'segmentation';
  window: number;
  stride: number;
  ratios: number[];
  /** e.g. "adapt-1024", "step-random", "instance-random". */
  ratioMix: string;
  /** Which beacon projections exist: subset of q, k, v, o. */
  param: string[];
  sinkSize: number;
  attendPrev: boolean;
}

export interface ModelConfig {
  arch: ArchName;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Dimensions of each head that RoPE rotates (the first ones): head_dim, or Phi's partial_rotary_factor · head_dim. */
  rotaryDim: number;
  /** The epsilon of every norm: rms_norm_eps, or layer_norm_eps for LayerNorm blocks (Phi). */
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: ModelRopeScaling | null;
  /** Native window: max_position_embeddings (before any rope scaling). */
  maxPositions: number;
  tieWordEmbeddings: boolean;
  qkvBias: boolean;
  bosTokenId: number | null;
  eosTokenIds: number[];
  beacon: BeaconConfig | null;
  /** FocusLLM checkpoints (`memory_stride` in config.json): the candidate projections' settings (focus-config.ts). */
  focus: FocusSettings | null;
  /** The block's norm, MLP and residual layout (the architecture's). */
  block: BlockShape;
  /** Softplus attention instead of softmax in every layer (softplus-config.ts); null = softmax. */
  softplus: SoftplusAttention | null;
}

type Json = Record<string, unknown>;

function num(cfg: Json, key: string, path: string, fallback?: number): number {
  const v = cfg[key];
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new CtxError('model', `config.json has no "${key}"`, { path });
  }
  throw new CtxError('model', `config.json "${key}" is not a number`, { path });
}

/**
 * Upper bounds on sizes, checked before anything is built from them: a config.json is untrusted
 * input, and `num_hidden_layers: 16777216` once had ctx build the expected shape of every layer until
 * the heap ran out. Each bound is far above any released model (Llama 3.1 405B: 126 layers, hidden
 * size 16384, 128 heads; Gemma: 256K vocabulary; 1M-token windows).
 */
const MAX_SIZE: Record<string, number> = {
  num_hidden_layers: 1024,
  hidden_size: 1 << 16,
  intermediate_size: 1 << 20,
  num_attention_heads: 1024,
  num_key_value_heads: 1024,
  head_dim: 1024,
  vocab_size: 1 << 23,
  max_position_embeddings: 1 << 24,
  beacon_window: 1 << 20,
};

function positiveInt(cfg: Json, key: string, path: string, fallback?: number): number {
  const v = num(cfg, key, path, fallback);
  if (!Number.isInteger(v) || v <= 0) {
    throw new CtxError('model', `config.json "${key}" must be a positive integer, got ${v}`, { path });
  }
  const max = MAX_SIZE[key] ?? 1 << 24;
  if (v > max) throw new CtxError('model', `config.json "${key}" is ${v}, more than ctx accepts (${max})`, { path });
  return v;
}

function resolveArch(cfg: Json, path: string): ArchName {
  const type = typeof cfg.model_type === 'string' ? cfg.model_type : undefined;
  if (type && type in ARCHITECTURES) return type as ArchName;
  const classes = Array.isArray(cfg.architectures) ? (cfg.architectures as unknown[]) : [];
  for (const [name, spec] of Object.entries(ARCHITECTURES)) {
    if (classes.some((c) => spec.classes.includes(String(c)))) return name as ArchName;
  }
  const what = type ?? (classes.length ? String(classes[0]) : 'no model_type');
  throw new CtxError('model', `unsupported architecture "${what}" (ctx runs ${Object.keys(ARCHITECTURES).join(', ')})`, { path });
}

function parseRopeScaling(cfg: Json, path: string): ModelRopeScaling | null {
  const rs = cfg.rope_scaling as Json | null | undefined;
  if (!rs) return null;
  const type = String(rs.rope_type ?? rs.type ?? '');
  const factor = num(rs, 'factor', path, 1);
  switch (type) {
    case 'default':
      return null;
    case 'linear':
      return { type: 'linear', factor };
    case 'dynamic':
      return { type: 'dynamic', factor };
    case 'yarn':
      return {
        type: 'yarn',
        factor,
        originalMaxPositions: num(rs, 'original_max_position_embeddings', path, num(cfg, 'max_position_embeddings', path)),
        betaFast: num(rs, 'beta_fast', path, 32),
        betaSlow: num(rs, 'beta_slow', path, 1),
        attentionFactor: typeof rs.attention_factor === 'number' ? rs.attention_factor : undefined,
      };
    case 'clex':
      return parseClexScaling(rs, cfg, path);
    case 'llama3':
      return {
        type: 'llama3',
        factor,
        lowFreqFactor: num(rs, 'low_freq_factor', path, 1),
        highFreqFactor: num(rs, 'high_freq_factor', path, 4),
        originalMaxPositions: num(rs, 'original_max_position_embeddings', path, 8192),
      };
    default:
      throw new CtxError('model', `unsupported rope_scaling type "${type}"`, { path });
  }
}

function parseBeacon(cfg: Json, path: string): BeaconConfig | null {
  if (cfg.beacon_window === undefined) return null;
  const window = positiveInt(cfg, 'beacon_window', path);
  // v1 configs carry `beacon_stride` as a list and no `beacon_pos`.
  const strideRaw = cfg.beacon_stride;
  const stride = Array.isArray(strideRaw) ? Number(strideRaw[0]) : typeof strideRaw === 'number' ? strideRaw : window;
  const version: 'v1' | 'v3' = cfg.beacon_pos === undefined ? 'v1' : 'v3';
  const pos = (cfg.beacon_pos ?? 'append') as BeaconConfig['pos'];
  const attn = (cfg.beacon_attn ?? (version === 'v3' ? 'full-coverage' : 'step-expansion')) as BeaconConfig['attn'];
  const ratiosRaw = cfg.beacon_ratio;
  const ratios = (Array.isArray(ratiosRaw) ? ratiosRaw : [ratiosRaw ?? 8]).map(Number);
  const param = Array.isArray(cfg.beacon_param) ? cfg.beacon_param.map(String) : ['q', 'k', 'v'];
  if (!['interleave', 'append'].includes(pos)) throw new CtxError('model', `unsupported beacon_pos "${pos}"`, { path });
  if (!['full-coverage', 'step-expansion', 'segmentation'].includes(attn)) {
    throw new CtxError('model', `unsupported beacon_attn "${attn}"`, { path });
  }
  if (!Number.isInteger(stride) || stride <= 0 || stride > window) {
    throw new CtxError('model', `beacon_stride ${stride} must be in 1..beacon_window (${window})`, { path });
  }
  if (pos === 'interleave' && stride !== window) {
    throw new CtxError('model', `interleaved beacons need beacon_stride == beacon_window (got ${stride} and ${window})`, { path });
  }
  for (const r of ratios) {
    if (!Number.isInteger(r) || r < 0 || (r > 0 && stride % r !== 0)) {
      throw new CtxError('model', `beacon_ratio ${r} must divide beacon_stride ${stride}`, { path });
    }
  }
  return {
    version,
    pos,
    attn,
    window,
    stride,
    ratios,
    ratioMix: String(cfg.beacon_ratio_mix ?? 'adapt-1024'),
    param,
    sinkSize: typeof cfg.beacon_sink_size === 'number' ? cfg.beacon_sink_size : 0,
    attendPrev: Boolean(cfg.beacon_attend_prev ?? cfg.beacon_attend_previous ?? true),
  };
}

/** Phi's rotary dimensions: int(partial_rotary_factor · head_dim) (0.5 is PhiConfig's default), even and at least 2. */
function partialRotaryDim(cfg: Json, headDim: number, path: string): number {
  const factor = num(cfg, 'partial_rotary_factor', path, 0.5);
  const dim = Math.floor(factor * headDim);
  if (!(factor > 0 && factor <= 1) || dim < 2 || dim % 2 !== 0) {
    throw new CtxError('model', `partial_rotary_factor ${factor} gives ${dim} rotary dimensions of head_dim ${headDim}; they must be even and at least 2`, { path });
  }
  return dim;
}

/** Parses an already-loaded config.json object. `path` is only used in error messages. */
export function parseModelConfig(cfg: Json, path = 'config.json'): ModelConfig {
  const arch = resolveArch(cfg, path);
  const hiddenSize = positiveInt(cfg, 'hidden_size', path);
  const numHeads = positiveInt(cfg, 'num_attention_heads', path);
  const numKvHeads = positiveInt(cfg, 'num_key_value_heads', path, numHeads);
  const headDim = positiveInt(cfg, 'head_dim', path, hiddenSize / numHeads);
  if (numHeads % numKvHeads !== 0) {
    throw new CtxError('model', `num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}`, { path });
  }
  if (headDim % 2 !== 0) throw new CtxError('model', `head_dim ${headDim} must be even for RoPE`, { path });
  const spec = ARCHITECTURES[arch];
  const act = cfg.hidden_act ?? spec.hiddenActs[0];
  if (!spec.hiddenActs.includes(String(act))) {
    throw new CtxError('model', `unsupported hidden_act "${String(act)}" for ${arch} (ctx runs ${spec.hiddenActs.join(' or ')})`, { path });
  }
  const rotaryDim = arch === 'phi' ? partialRotaryDim(cfg, headDim, path) : headDim;
  if (cfg.qk_layernorm === true) throw new CtxError('model', 'qk_layernorm is not supported (ctx runs Phi-2 without it)', { path });
  const eos = cfg.eos_token_id;
  const eosTokenIds = Array.isArray(eos) ? eos.map(Number) : typeof eos === 'number' ? [eos] : [];
  const qkvBias = typeof cfg.attention_bias === 'boolean' ? cfg.attention_bias : ARCHITECTURES[arch].qkvBias;
  const beacon = parseBeacon(cfg, path);
  const focus = parseFocusSettings(cfg, path);
  // Both read the beacon_* tensors, as condensing beacons or as FocusLLM's candidate projections.
  if (beacon && focus) throw new CtxError('model', 'config.json has both Activation Beacon (beacon_window) and FocusLLM (memory_stride) keys; the beacon_* tensors can be only one of them', { path });
  const ropeScaling = parseRopeScaling(cfg, path);
  const softplus = parseSoftplusAttention(cfg, path);
  // CLEX's log_scale multiplies the queries; softplus attention's cosine similarities would ignore it.
  if (softplus && ropeScaling?.type === 'clex' && ropeScaling.logScale) throw new CtxError('model', 'config.json has both CLEX log_scale and softplus attention; log_scale scales the queries, which cosine similarities ignore, so ctx runs only one of them', { path });
  return {
    arch,
    vocabSize: positiveInt(cfg, 'vocab_size', path),
    hiddenSize,
    intermediateSize: positiveInt(cfg, 'intermediate_size', path),
    numLayers: positiveInt(cfg, 'num_hidden_layers', path),
    numHeads,
    numKvHeads,
    headDim,
    rotaryDim,
    rmsNormEps: spec.block.norm === 'layer' ? num(cfg, 'layer_norm_eps', path, 1e-5) : num(cfg, 'rms_norm_eps', path, 1e-6),
    ropeTheta: num(cfg, 'rope_theta', path, 10000),
    ropeScaling,
    maxPositions: positiveInt(cfg, 'max_position_embeddings', path),
    tieWordEmbeddings: Boolean(cfg.tie_word_embeddings ?? false),
    qkvBias,
    bosTokenId: typeof cfg.bos_token_id === 'number' ? cfg.bos_token_id : null,
    eosTokenIds,
    beacon,
    focus,
    block: spec.block,
    softplus,
  };
}

export function readModelConfig(dir: string): ModelConfig {
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw fsError(e, path, 'model');
  }
  let cfg: unknown;
  try {
    cfg = JSON.parse(text);
  } catch (e) {
    throw new CtxError('model', `not valid JSON (${(e as Error).message})`, { path });
  }
  if (!cfg || typeof cfg !== 'object' || Array.isArray(cfg)) throw new CtxError('model', 'not a JSON object', { path });
  return parseModelConfig(cfg as Json, path);
}

/** KV bytes one token costs across all layers at `bytesPerValue` (4 for float32, 2 for bf16). */
export function kvBytesPerToken(c: ModelConfig, bytesPerValue = 4): number {
  return 2 * c.numLayers * c.numKvHeads * c.headDim * bytesPerValue;
}
