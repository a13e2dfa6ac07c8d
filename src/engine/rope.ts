// RoPE frequencies: the model's own table (with its config's rope_scaling) and the training-free
// scalings a user can ask for with the `full` strategy (ALGORITHMS.md §3). Each returns the
// [D/2] inverse frequencies θ_i and a cos/sin multiplier; backends apply them at attention time.
//
// θ_i = 1 / base^(2i/D), computed the way PyTorch does in float32 (exponent rounded to float32,
// power rounded to float32, reciprocal rounded to float32) so angles match the reference exactly.

import type { RopeTable } from '../backend/contract.js';
import type { ModelConfig, ModelRopeScaling } from '../model/config.js';

export type RopeScalingName = 'none' | 'linear' | 'ntk' | 'dynamic' | 'yarn' | 'truncated';

export interface RopeScalingOptions {
  type: RopeScalingName;
  /** s = target length / native length. */
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
  const D = c.headDim;
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
  const D = c.headDim;
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
  const D = c.headDim;
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
  }
}

/** Whether the table changes with the sequence length (then it is recomputed per step). */
export function ropeDependsOnLength(c: ModelConfig, user: RopeScalingOptions | null): boolean {
  if (user && user.type !== 'none') return user.type === 'dynamic';
  return c.ropeScaling?.type === 'dynamic';
}

/** Positions a model can address with this scaling (the `full` strategy's capacity). */
export function ropeCapacity(c: ModelConfig, user: RopeScalingOptions | null): number {
  if (!user || user.type === 'none') {
    const s = c.ropeScaling;
    // llama3 configs already state the extended length in max_position_embeddings.
    return s && s.type !== 'llama3' ? Math.floor(c.maxPositions * s.factor) : c.maxPositions;
  }
  return Math.floor(c.maxPositions * user.factor);
}
