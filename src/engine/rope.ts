// RoPE frequencies: the model's own table (with its config's rope_scaling) and the training-free
// scalings a user can ask for with the `full` strategy (ALGORITHMS.md §3). Each returns the
// [D/2] inverse frequencies θ_i (D = the rotary dims) and a cos/sin multiplier; backends apply
// them at attention time. CLEX (rope-clex.ts) is the one scaling computed from the checkpoint's
// own tensors: `runRope` gives every run its tables, CLEX's included.
//
// θ_i = 1 / base^(2i/D), computed the way PyTorch does in float32 (exponent rounded to float32,
// power rounded to float32, reciprocal rounded to float32) so angles match the reference exactly.

import type { RopeTable } from '../backend/contract.js';
import { CtxError } from '../errors.js';
import type { ClexScaling } from '../model/clex-config.js';
import type { ModelConfig, ModelRopeScaling } from '../model/config.js';
import type { Model } from '../model/model.js';
import { ClexRope } from './rope-clex.js';

export type RopeScalingName = 'none' | 'linear' | 'ntk' | 'dynamic' | 'yarn' | 'truncated' | 'clex';

export interface RopeScalingOptions {
  type: RopeScalingName;
  /** s = target length / native length (clex: max_factor, set from the model's config). */
  factor: number;
}

const f = Math.fround;

export function baseInvFreq(headDim: number, base: number): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let i = 0; i < out.length; i++) out[i] = f(1 / f(Math.pow(base, f((2 * i) / headDim))));
  return out;
}

/** Applies the model's own `rope_scaling` (llama3, yarn, linear) to the base table. */
function modelTable(c: ModelConfig, scaling: ModelRopeScaling | null, seqLen: number): RopeTable {
  const D = c.rotaryDim;
  if (!scaling) return { invFreq: baseInvFreq(D, c.ropeTheta), scale: 1 };
  switch (scaling.type) {
    case 'linear':
      return { invFreq: baseInvFreq(D, c.ropeTheta).map((v) => f(v / scaling.factor)), scale: 1 };
    case 'dynamic':
      return dynamicNtk(c, scaling.factor, c.maxPositions, seqLen);
    case 'yarn':
      return yarn(D, c.ropeTheta, scaling.factor, scaling.originalMaxPositions, scaling.betaFast, scaling.betaSlow, scaling.attentionFactor);
    case 'llama3':
      return llama3(D, c.ropeTheta, scaling);
    case 'clex':
      throw new Error('CLEX tables come from the checkpoint (runRope), not from the config alone');
  }
}

/** Llama 3.1's frequency-dependent interpolation (transformers' _compute_llama3_parameters). */
function llama3(D: number, base: number, s: Extract<ModelRopeScaling, { type: 'llama3' }>): RopeTable {
  const inv = baseInvFreq(D, base);
  const lowWavelen = s.originalMaxPositions / s.lowFreqFactor;
  const highWavelen = s.originalMaxPositions / s.highFreqFactor;
  const out = inv.map((v) => {
    const wavelen = (2 * Math.PI) / v;
    if (wavelen < highWavelen) return v;
    if (wavelen > lowWavelen) return f(v / s.factor);
    const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return f((1 - smooth) * (v / s.factor) + smooth * v);
  });
  return { invFreq: out, scale: 1 };
}

/** Dynamic NTK (HF): base' = base · (s·n/L − (s − 1))^(D/(D−2)) once n > L. */
function dynamicNtk(c: ModelConfig, s: number, L: number, seqLen: number): RopeTable {
  const D = c.rotaryDim;
  if (seqLen <= L) return { invFreq: baseInvFreq(D, c.ropeTheta), scale: 1 };
  const base = c.ropeTheta * Math.pow((s * seqLen) / L - (s - 1), D / (D - 2));
  return { invFreq: baseInvFreq(D, base), scale: 1 };
}

/**
 * YaRN: interpolate low frequencies by 1/s, keep high ones, linear ramp between the dimensions
 * whose wavelengths fit betaFast and betaSlow times in L; cos and sin × (0.1 ln s + 1).
 */
function yarn(D: number, base: number, s: number, L: number, betaFast = 32, betaSlow = 1, attentionFactor?: number): RopeTable {
  const inv = baseInvFreq(D, base);
  const correctionDim = (rotations: number) => (D * Math.log(L / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
  const low = Math.max(Math.floor(correctionDim(betaFast)), 0);
  const high = Math.min(Math.ceil(correctionDim(betaSlow)), D - 1);
  const span = high === low ? high + 0.001 - low : high - low;
  const out = inv.map((v, i) => {
    const ramp = Math.min(Math.max((i - low) / span, 0), 1);
    const extrapolation = 1 - ramp; // 1 → keep θ_i (high frequency), 0 → θ_i / s
    return f((v / s) * (1 - extrapolation) + v * extrapolation);
  });
  return { invFreq: out, scale: attentionFactor ?? (s <= 1 ? 1 : 0.1 * Math.log(s) + 1) };
}

/**
 * Giraffe's truncated basis with cut-off length Lc (c = 2π/Lc): keep θ_i ≥ c, use 2π/(16·Lc) for
 * θ_i in [c/8, c), and 0 (no rotation) below c/8.
 */
function truncated(D: number, base: number, Lc: number): RopeTable {
  const c = (2 * Math.PI) / Lc;
  const rho = (2 * Math.PI) / (16 * Lc);
  const out = baseInvFreq(D, base).map((v) => (v >= c ? v : v >= c / 8 ? f(rho) : 0));
  return { invFreq: out, scale: 1 };
}

/**
 * The RoPE table for a step whose largest position is seqLen − 1. The user's scaling (for `full`)
 * replaces the model's own; without one the model's config decides.
 */
export function ropeTable(c: ModelConfig, user: RopeScalingOptions | null, seqLen: number): RopeTable {
  if (!user || user.type === 'none') return modelTable(c, c.ropeScaling, seqLen);
  const D = c.rotaryDim;
  const L = c.maxPositions;
  const s = user.factor;
  switch (user.type) {
    case 'linear':
      return { invFreq: baseInvFreq(D, c.ropeTheta).map((v) => f(v / s)), scale: 1 };
    case 'ntk':
      return { invFreq: baseInvFreq(D, c.ropeTheta * Math.pow(s, D / (D - 2))), scale: 1 };
    case 'dynamic':
      return dynamicNtk(c, s, L, seqLen);
    case 'yarn':
      return yarn(D, c.ropeTheta, s, L);
    case 'truncated':
      return truncated(D, c.ropeTheta, L);
    case 'clex':
      throw new Error('CLEX tables come from the checkpoint (runRope), not from the config alone');
  }
}

/** Whether the table changes with the sequence length (then it is recomputed per step). */
export function ropeDependsOnLength(c: ModelConfig, user: RopeScalingOptions | null): boolean {
  if (user && user.type !== 'none') return user.type === 'dynamic' || user.type === 'clex';
  return c.ropeScaling?.type === 'dynamic' || c.ropeScaling?.type === 'clex';
}

/** Positions a model can address with this scaling (the `full` strategy's capacity). */
export function ropeCapacity(c: ModelConfig, user: RopeScalingOptions | null): number {
  if (!user || user.type === 'none') {
    const s = c.ropeScaling;
    if (s?.type === 'clex') return c.maxPositions * s.maxFactor;
    // llama3 configs already state the extended length in max_position_embeddings.
    return s && s.type !== 'llama3' ? Math.floor(c.maxPositions * s.factor) : c.maxPositions;
  }
  return Math.floor(c.maxPositions * user.factor);
}

/** The model's CLEX scaling when this run uses it (the model's own, or `--rope clex`), else null. */
export function clexOf(c: ModelConfig, user: RopeScalingOptions | null): ClexScaling | null {
  const s = c.ropeScaling;
  return s?.type === 'clex' && (!user || user.type === 'none' || user.type === 'clex') ? s : null;
}

/** The RoPE tables of a run: `table(seqLen)` for a step whose largest position is seqLen − 1. */
export interface RunRope {
  table: (seqLen: number) => RopeTable;
  /**
   * CLEX: the table is that of a forward call's total length, so every chunk of one feed (a prompt
   * cut into steps) takes the table of the length the feed reaches, as one call would.
   */
  perCall: boolean;
}

/** Each model's CLEX frequencies, integrated once (they depend only on the weights). */
const clexRopes = new WeakMap<Model, ClexRope>();

/** The CLEX frequencies of a model with a CLEX checkpoint (its `model.clex_layer` tensors). */
export function clexRope(model: Model): ClexRope {
  let rope = clexRopes.get(model);
  if (!rope) {
    const c = model.config;
    if (c.ropeScaling?.type !== 'clex') throw new Error('clexRope: the model has no CLEX rope_scaling');
    const t = model.tensors.model.clex.tensors;
    const read = (key: string) => model.weights.float32(t[key].name);
    const weights = { invFreq: read('inv_freq'), up: read('proj_func.ode_up_proj'), down: read('proj_func.ode_down_proj') };
    rope = new ClexRope(weights, c.rotaryDim, c.maxPositions, c.ropeScaling, model.dir);
    clexRopes.set(model, rope);
  }
  return rope;
}

/** The tables of a run on `model` with the user's scaling (null: the model's own; clex: its factor is ignored). */
export function runRope(model: Model, user: RopeScalingOptions | null): RunRope {
  const c = model.config;
  if (user?.type === 'clex' && !clexOf(c, user)) {
    throw new CtxError('usage', 'CLEX needs a CLEX checkpoint (rope_scaling type "clex" in config.json and its model.clex_layer tensors); this model has none', { path: model.dir });
  }
  if (clexOf(c, user)) {
    const clex = clexRope(model);
    return {
      table: (seqLen) => {
        const call = clex.forLength(seqLen);
        return { invFreq: call.invFreq, scale: 1, queryScale: call.queryScale };
      },
      perCall: true,
    };
  }
  if (ropeDependsOnLength(c, user)) return { table: (seqLen) => ropeTable(c, user, seqLen), perCall: false };
  const fixed = ropeTable(c, user, 0);
  return { table: () => fixed, perCall: false };
}
