// CLEX (arXiv 2310.16450; ../shared/research/CLEX.md): a RoPE scaling whose frequencies come from a
// small learned ODE. A forward call of total length L (cached + new tokens) uses one integer scale
// factor t = min(⌈L/P⌉, max_factor) for every query and key, P = max_position_embeddings (the base
// model's window). t = 1 rotates with the checkpoint's stored inv_freq; t ≥ 2 with f(t) = exp(x(t)),
// where x solves, from x(1) = ln(inv_freq):
//
//   ln ntk_i(t) = −(2i/D)·ln b − (2i/(D−2))·ln(2t−1)          b = 10000 always (not rope_theta)
//   dx/dt       = act((x + ln ntk(t)) · W_up) · W_down − 2·(2i/(D−2)) / (2t−1)
//
// integrated with torchdiffeq's fixed-step "rk4" (the Runge–Kutta 3/8 rule) at step time_dt, read at
// whole t. We integrate in float64 and round to float32: the official code integrates in float32, and
// CLEX.md §9 measured float64-then-round as the closest match to its output.
//
// Positions stay the integers 0 … L−1; only the frequencies change, so a backend that keeps keys
// before RoPE re-rotates every cached key when t changes. Nothing here touches a tensor of the model
// besides the three CLEX tensors; the backends take the table for the call's t.

import { CtxError } from '../errors.js';
import type { ClexScaling } from '../model/clex-config.js';

/** The ODE's time-embedding base: a constant of the official code (CLEX.md §6 quirk 2). */
const TIME_EMBEDDING_BASE = 10000;

/** The longest input a CLEX model addresses: P·max_factor (the official cos/sin table ends there). */
export function clexReach(maxPositions: number, s: Pick<ClexScaling, 'maxFactor'>): number {
  return maxPositions * s.maxFactor;
}

/**
 * The scale factor of a call whose total length (cached + new) is L: ⌈L/P⌉ capped at max_factor.
 * Past P·max_factor the official code fails with an IndexError; ctx refuses with the numbers.
 */
export function clexScaleFactor(L: number, maxPositions: number, s: Pick<ClexScaling, 'maxFactor'>, path?: string): number {
  if (!Number.isInteger(L) || L < 1) throw new RangeError(`CLEX length must be a positive integer, got ${L}`);
  const reach = clexReach(maxPositions, s);
  if (L > reach) {
    throw new CtxError(
      'doesNotFit',
      `${L} tokens exceed this CLEX model's reach of ${reach} (max_position_embeddings ${maxPositions} × max_factor ${s.maxFactor})`,
      { path },
    );
  }
  return Math.min(Math.ceil(L / maxPositions), s.maxFactor);
}

/** The log_scale query factor ln(L)/ln(P), in float32 like the reference (0 at L = 1). */
export function clexQueryScale(L: number, maxPositions: number): number {
  const f = Math.fround;
  return f(f(Math.log(L)) / f(Math.log(maxPositions)));
}

export interface ClexWeights {
  /** [D/2] */
  invFreq: Float32Array;
  /** [D/2, p·D] row-major */
  up: Float32Array;
  /** [p·D, D/2] row-major */
  down: Float32Array;
}

/** Checks the three tensors against D and p before anything is integrated. */
export function checkClexWeights(w: ClexWeights, rotaryDim: number, s: ClexScaling, path?: string): void {
  const half = rotaryDim / 2;
  const width = s.paramFactor * rotaryDim;
  const want: Array<[string, Float32Array, number, string]> = [
    ['inv_freq', w.invFreq, half, `[${half}]`],
    ['ode_up_proj', w.up, half * width, `[${half}, ${width}]`],
    ['ode_down_proj', w.down, width * half, `[${width}, ${half}]`],
  ];
  for (const [name, t, n, shape] of want) {
    if (t.length !== n) throw new CtxError('model', `CLEX ${name} has ${t.length} values, expected ${shape} for rotary dim ${rotaryDim} and param_factor ${s.paramFactor}`, { path });
  }
  for (const v of w.invFreq) {
    if (!(v > 0 && Number.isFinite(v))) throw new CtxError('model', `CLEX inv_freq holds ${v}; every frequency must be positive`, { path });
  }
}

/**
 * f(t) for t = 1 … max_factor: row t−1 is the [D/2] inverse-frequency vector of scale factor t.
 * Row 0 is the stored inv_freq itself (the official t = 1 branch never reads the ODE).
 */
export function clexFrequencyTable(w: ClexWeights, rotaryDim: number, s: ClexScaling): Float32Array[] {
  const D = rotaryDim;
  const half = D / 2;
  const width = s.paramFactor * D;
  const act = s.act === 'tanh' ? Math.tanh : (v: number) => v / (1 + Math.exp(-v));
  const lnB = Math.log(TIME_EMBEDDING_BASE);
  const e = Float64Array.from({ length: half }, (_, i) => (2 * i) / D);
  const g = Float64Array.from({ length: half }, (_, i) => (2 * i) / (D - 2));
  const up = Float64Array.from(w.up);
  const down = Float64Array.from(w.down);
  const hidden = new Float64Array(width);

  // F(t, x) = act((x + ln ntk(t)) · W_up) · W_down + d ln ntk/dt, written into out.
  const F = (t: number, x: Float64Array, out: Float64Array) => {
    const alpha = t < 1 ? 1 : 2 * t - 1;
    const lnAlpha = Math.log(alpha);
    hidden.fill(0);
    for (let i = 0; i < half; i++) {
      const xi = x[i] - e[i] * lnB - g[i] * lnAlpha;
      const row = i * width;
      for (let j = 0; j < width; j++) hidden[j] += xi * up[row + j];
    }
    for (let j = 0; j < width; j++) hidden[j] = act(hidden[j]);
    for (let i = 0; i < half; i++) {
      let sum = 0;
      for (let j = 0; j < width; j++) sum += hidden[j] * down[j * half + i];
      out[i] = sum - (2 * g[i]) / alpha;
    }
  };

  const rows: Float32Array[] = [Float32Array.from(w.invFreq)];
  let x = Float64Array.from(w.invFreq, Math.log);
  const k1 = new Float64Array(half);
  const k2 = new Float64Array(half);
  const k3 = new Float64Array(half);
  const k4 = new Float64Array(half);
  const tmp = new Float64Array(half);
  const end = s.maxFactor;
  // torchdiffeq's grid: 1 + k·dt for k = 0 … ⌈(end−1)/dt⌉, the last point set to `end`; each whole
  // t is read where a grid point lands on it, else linearly between the two grid points around it.
  const steps = Math.ceil((end - 1) / s.timeDt - 1e-9);
  let nextT = 2;
  let t0 = 1;
  for (let k = 1; k <= steps && nextT <= end; k++) {
    const t1 = k === steps ? end : 1 + k * s.timeDt;
    const h = t1 - t0;
    F(t0, x, k1);
    for (let i = 0; i < half; i++) tmp[i] = x[i] + (h * k1[i]) / 3;
    F(t0 + h / 3, tmp, k2);
    for (let i = 0; i < half; i++) tmp[i] = x[i] + h * (k2[i] - k1[i] / 3);
    F(t0 + (2 * h) / 3, tmp, k3);
    for (let i = 0; i < half; i++) tmp[i] = x[i] + h * (k1[i] - k2[i] + k3[i]);
    F(t1, tmp, k4);
    const x1 = new Float64Array(half);
    for (let i = 0; i < half; i++) x1[i] = x[i] + ((k1[i] + 3 * (k2[i] + k3[i]) + k4[i]) * h) / 8;
    // Whole t within rounding of t1 count as landing on it (float64 k·dt is off by an ulp at most).
    while (nextT <= end && t1 >= nextT - 1e-9) {
      const w1 = Math.abs(t1 - nextT) <= 1e-9 ? 1 : (nextT - t0) / h;
      rows.push(Float32Array.from(x1, (v, i) => Math.exp(x[i] + w1 * (v - x[i]))));
      nextT++;
    }
    x = x1;
    t0 = t1;
  }
  return rows;
}

/** What a backend needs for one call: the call's t, its frequencies and its query factor. */
export interface ClexCallRope {
  t: number;
  /** [D/2] the frequencies of scale factor t (the same array for every call with that t). */
  invFreq: Float32Array;
  /** Multiplies the rotated queries (log_scale); 1 when the model does not use it. */
  queryScale: number;
}

/** A CLEX model's RoPE: the table is integrated once, on construction, from the checkpoint's tensors. */
export class ClexRope {
  readonly scaling: ClexScaling;
  readonly maxPositions: number;
  readonly table: Float32Array[];
  private readonly path?: string;

  constructor(weights: ClexWeights, rotaryDim: number, maxPositions: number, scaling: ClexScaling, path?: string) {
    checkClexWeights(weights, rotaryDim, scaling, path);
    this.scaling = scaling;
    this.maxPositions = maxPositions;
    this.path = path;
    this.table = clexFrequencyTable(weights, rotaryDim, scaling);
  }

  get reach(): number {
    return clexReach(this.maxPositions, this.scaling);
  }

  /** The rope of a call whose total length (cached + new rows) is L; refuses L past the reach. */
  forLength(L: number): ClexCallRope {
    const t = clexScaleFactor(L, this.maxPositions, this.scaling, this.path);
    return { t, invFreq: this.table[t - 1], queryScale: this.scaling.logScale ? clexQueryScale(L, this.maxPositions) : 1 };
  }
}
