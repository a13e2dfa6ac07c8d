// FocusLLM's config keys (arXiv 2408.11745; ../shared/research/FOCUSLLM.md §7, from the official code
// leezythu/FocusLLM @ac695a6). A FocusLLM checkpoint is a Llama model with `local_window`,
// `memory_stride` and `beacon_param` in its config.json and, per layer, the candidate projections
// `beacon_{q,k,v,o}_proj` (model/tensors.ts). The chunk plan built from these settings is
// engine/strategies/focus-plan.ts.

import { CtxError } from '../errors.js';

type Json = Record<string, unknown>;

/** FocusLLM's settings: the model's config keys, with the official code's defaults and constants. */
export interface FocusSettings {
  /** LW: `local_window` (official default 1024). */
  localWindow: number;
  /** S: the one value of `memory_stride` (official default [1024]). */
  stride: number;
  /** Prompts shorter than this are plain attention: `focus_short_prompt_limit` (official code: 4096, hard-coded). */
  shortPromptLimit: number;
  /** Largest tail T: `focus_tail_cap` (official code: 512, hard-coded). */
  tailCap: number;
  /** The BOS id put in front of the tail and the local window: `focus_bos_token_id` (official code: 1, hard-coded). */
  bosId: number;
  /** Which candidate projections the checkpoint has: `beacon_param` (official default q, k, v, o). */
  param: string[];
}

export const FOCUS_DEFAULTS = { localWindow: 1024, stride: 1024, shortPromptLimit: 4096, tailCap: 512, bosId: 1, param: ['q', 'k', 'v', 'o'] } as const;

/**
 * Reads FocusLLM's keys from a config.json object; null for a model without `memory_stride` (not a
 * FocusLLM model). The three `focus_*` keys are ctx's own (the official code hard-codes them); a
 * FocusLLM checkpoint does not carry them and gets the official values.
 */
export function parseFocusSettings(cfg: Json, path: string): FocusSettings | null {
  if (cfg.memory_stride === undefined) return null;
  const bad = (what: string): never => {
    throw new CtxError('model', `config.json ${what}`, { path });
  };
  const count = (key: string, fallback: number, min = 1): number => {
    const v = cfg[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) return bad(`"${key}" must be an integer ≥ ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const strides = cfg.memory_stride;
  if (!Array.isArray(strides) || strides.length !== 1 || !Number.isInteger(strides[0]) || strides[0] < 1) {
    bad(`"memory_stride" must hold exactly one positive stride at inference, got ${JSON.stringify(strides)}`);
  }
  // The official code draws random.choice(range(30, LW − 1)) even at inference: LW ≥ 32.
  const localWindow = count('local_window', FOCUS_DEFAULTS.localWindow, 32);
  const shortPromptLimit = count('focus_short_prompt_limit', FOCUS_DEFAULTS.shortPromptLimit);
  if (localWindow >= shortPromptLimit) {
    bad(`"local_window" ${localWindow} must be smaller than the chunking threshold ${shortPromptLimit}, so a chunked prompt has context to chunk`);
  }
  const param = cfg.beacon_param ?? FOCUS_DEFAULTS.param;
  if (!Array.isArray(param) || !param.every((p) => ['q', 'k', 'v', 'o', 'mlp'].includes(String(p)))) {
    bad(`"beacon_param" must list some of q, k, v, o, mlp, got ${JSON.stringify(param)}`);
  }
  // No script of the official code trains the candidate's own MLP (beacon_up/down_proj); ctx does not run it.
  if ((param as unknown[]).includes('mlp')) bad('"beacon_param" lists "mlp": candidate MLP projections (beacon_up_proj, beacon_down_proj) are not supported');
  return {
    localWindow,
    stride: (strides as number[])[0],
    shortPromptLimit,
    tailCap: count('focus_tail_cap', FOCUS_DEFAULTS.tailCap),
    bosId: count('focus_bos_token_id', FOCUS_DEFAULTS.bosId, 0),
    param: (param as unknown[]).map(String),
  };
}
