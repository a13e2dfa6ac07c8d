// CLEX's config.json keys (arXiv 2310.16450; ../shared/research/CLEX.md §2): a `rope_scaling` of type
// "clex" and the model-level `log_scale` flag. The frequencies they describe are computed in
// src/engine/rope-clex.ts; the checkpoint's three `model.clex_layer.*` tensors are a row of the
// tensor table (tensors.ts).

import { CtxError } from '../errors.js';

type Json = Record<string, unknown>;

/** `rope_scaling` of a CLEX config plus the model-level `log_scale` flag. */
export interface ClexScaling {
  type: 'clex';
  /** Largest scale factor t; inputs longer than P·maxFactor are refused. */
  maxFactor: number;
  /** Width multiplier p of the ODE network (hidden width p·D). */
  paramFactor: number;
  act: 'tanh' | 'silu';
  /** Integrator step (0.01 in every released config). */
  timeDt: number;
  /**
   * Multiply the rotated queries by ln(L)/ln(P) before attention. The official code does this only
   * on its flash-attention path, which is how the released 16K Llama models are meant to run; so
   * ctx applies it when `log_scale` is true unless `use_flashattn` is explicitly false.
   */
  logScale: boolean;
}

/**
 * Reads a CLEX `rope_scaling` object (type "clex") and the config's `log_scale` / `use_flashattn`.
 * `act` and `time_dt` default to silu and 0.01, the values the October-2023 code hard-coded, so the
 * early CLEX-7B-Chat-16K config (which lacks both keys) loads. `factor` is read by the official
 * Llama code but unused; ctx neither requires nor uses it.
 */
export function parseClexScaling(rs: Json, cfg: Json, path: string): ClexScaling {
  const bad = (what: string): never => {
    throw new CtxError('model', `config.json rope_scaling (clex): ${what}`, { path });
  };
  const int = (key: string): number => {
    const v = rs[key];
    if (v === undefined || v === null) return bad(`no "${key}"`);
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 4096) return bad(`"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const maxFactor = int('max_factor');
  const paramFactor = int('param_factor');
  const act = rs.act ?? 'silu';
  if (act !== 'tanh' && act !== 'silu') bad(`"act" must be "tanh" or "silu", got ${JSON.stringify(act)}`);
  const timeDt = rs.time_dt ?? 0.01;
  if (typeof timeDt !== 'number' || !(timeDt > 0 && timeDt <= 1)) bad(`"time_dt" must be a number in (0, 1], got ${JSON.stringify(timeDt)}`);
  const logScale = cfg.log_scale === true && cfg.use_flashattn !== false;
  return { type: 'clex', maxFactor, paramFactor, act: act as ClexScaling['act'], timeDt: timeDt as number, logScale };
}
