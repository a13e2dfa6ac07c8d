// FocusLLM's chunk plan (arXiv 2408.11745; ../shared/research/FOCUSLLM.md, from the official code
// leezythu/FocusLLM @ac695a6), decided once for a prompt, before any backend runs:
//
//   prompt (N tokens) = context [0, N−LW) ‖ local window [N−LW, N)          LW = local_window
//   context → C = ⌈(N−LW)/S⌉ chunks of S tokens, the last one shorter       S = memory_stride
//   tail P = bos(prompt[N−T, N)), T = min(512, S, LW)                         bos(x): BOS in front unless x starts with it
//   chunk pass i:  chunk_i ‖ P at positions 0 … ; its last row (prompt[N−1]) is the candidate,
//                  run with the beacon_{q,k,v,o} projections; the other rows are kept (keys pre-RoPE)
//   local pass:    the C candidates at positions 0 … C−1, then bos(local window) at C, C+1, …
//
// Decode step k (token g_k fed): every chunk gets two rows, the previous token (an ordinary row;
// prompt[N−1] at k = 1) and g_k (the new candidate), at the next two positions of that chunk; then
// the local pass bos(local window) ‖ g_1 … g_k is recomputed from scratch over the C new candidates.
// Prompts shorter than the threshold (4096 in the official code) are not chunked: plain causal
// attention over bos(prompt).
//
// Cost per layer: KV held = Σ_i (S_i + |P| − 1 + k) + C ≈ N + C·(T + k) — no saving over full
// attention (N + k): the tail and every generated token are stored once per chunk. Each generated
// token runs 2C chunk rows plus the LW + 1 + k local rows through every layer.

import { CtxError } from '../../errors.js';

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
  return {
    localWindow,
    stride: (strides as number[])[0],
    shortPromptLimit,
    tailCap: count('focus_tail_cap', FOCUS_DEFAULTS.tailCap),
    bosId: count('focus_bos_token_id', FOCUS_DEFAULTS.bosId, 0),
    param: (param as unknown[]).map(String),
  };
}

/** The plan of one prompt. Token ranges are [start, end) in the prompt. */
export interface FocusPlan {
  /** False below the threshold: plain causal attention over bos(prompt), nothing below applies. */
  chunked: boolean;
  /** Prompt length N. */
  n: number;
  /** Context tokens cut into chunks: N − LW (0 when not chunked). */
  nContext: number;
  chunks: Array<[number, number]>;
  /** T = min(tailCap, S, LW) prompt tokens appended to every chunk (0 when not chunked). */
  tailLen: number;
  tailStart: number;
  tailBos: boolean;
  /** Where the rows of the local pass (or, unchunked, of the whole prompt) start in the prompt. */
  localStart: number;
  localBos: boolean;
  /** Rows of the prefill's local pass, BOS included = logit rows of the prefill. */
  prefillRows: number;
  /** Rows of each prefill chunk pass: S_i + |P| (the candidate is the last). */
  chunkPassLengths: number[];
}

export function planFocus(prompt: ArrayLike<number>, s: FocusSettings): FocusPlan {
  const N = prompt.length;
  if (N < s.shortPromptLimit) {
    const bos = N === 0 || prompt[0] !== s.bosId;
    return { chunked: false, n: N, nContext: 0, chunks: [], tailLen: 0, tailStart: N, tailBos: false, localStart: 0, localBos: bos, prefillRows: N + (bos ? 1 : 0), chunkPassLengths: [] };
  }
  const LW = s.localWindow;
  const S = s.stride;
  const nContext = N - LW;
  const chunks: Array<[number, number]> = [];
  for (let start = 0; start < nContext; start += S) chunks.push([start, Math.min(start + S, nContext)]);
  const tailLen = Math.min(s.tailCap, S, LW);
  const tailStart = N - tailLen;
  const tailBos = prompt[tailStart] !== s.bosId;
  const localBos = prompt[nContext] !== s.bosId;
  const tailRows = tailLen + (tailBos ? 1 : 0);
  return {
    chunked: true,
    n: N,
    nContext,
    chunks,
    tailLen,
    tailStart,
    tailBos,
    localStart: nContext,
    localBos,
    prefillRows: LW + (localBos ? 1 : 0),
    chunkPassLengths: chunks.map(([a, b]) => b - a + tailRows),
  };
}

/** The rows of decode step k ≥ 1 (token g_k just fed), with their positions. */
export interface FocusStep {
  /** Per chunk: the previous token (ordinary row) and g_k (the candidate), at these two positions. */
  chunkRows: Array<{ previousPosition: number; candidatePosition: number }>;
  /** The local pass, recomputed: this many rows at positions C … C + rows − 1 after C candidates. */
  localRows: number;
  localFirstPosition: number;
}

export function focusStep(plan: FocusPlan, k: number): FocusStep {
  if (!(Number.isInteger(k) && k >= 1)) throw new RangeError(`decode step must be ≥ 1, got ${k}`);
  if (!plan.chunked) return { chunkRows: [], localRows: plan.prefillRows + k, localFirstPosition: 0 };
  const tailRows = plan.tailLen + (plan.tailBos ? 1 : 0);
  const C = plan.chunks.length;
  return {
    chunkRows: plan.chunks.map(([a, b]) => {
      const previousPosition = b - a + tailRows - 1 + (k - 1);
      return { previousPosition, candidatePosition: previousPosition + 1 };
    }),
    localRows: plan.prefillRows + k,
    localFirstPosition: C,
  };
}

/** KV rows per layer and work per token after k generated tokens (k = 0: right after the prefill). */
export interface FocusCost {
  /** S_i + |P| − 1 + k per chunk: its kept rows (the reference's chunk_raw_kv). */
  chunkRaw: number[];
  /** Their sum (the reference's chunk_raw_kv_total). */
  chunkRawRows: number;
  /** C: one candidate per chunk. */
  candidateRows: number;
  /** Held between calls: chunkRawRows + candidateRows ≈ N + C·(T + k). */
  kvRows: number;
  /** Rows of the local pass, alive only during a call: prefillRows + k. */
  localPassRows: number;
  /** Most rows alive at once, during a local pass. */
  peakRows: number;
  /** Rows run through every layer for one generated token: 2C + the local pass (1 for full attention). */
  rowsPerToken: number;
  /** Full attention over the same tokens holds N + k rows. */
  fullAttentionRows: number;
}

export function focusCost(plan: FocusPlan, k: number): FocusCost {
  const C = plan.chunks.length;
  const tailRows = plan.tailLen + (plan.tailBos ? 1 : 0);
  const chunkRaw = plan.chunks.map(([a, b]) => b - a + tailRows - 1 + k);
  const chunkRawRows = chunkRaw.reduce((sum, r) => sum + r, 0);
  const localPassRows = plan.prefillRows + k;
  // Unchunked, ctx keeps a KV cache of bos(prompt) + generated tokens (the official code recomputes
  // them each step; the results agree), so a token costs one row like full attention.
  const kvRows = plan.chunked ? chunkRawRows + C : localPassRows;
  return {
    chunkRaw,
    chunkRawRows,
    candidateRows: C,
    kvRows,
    localPassRows,
    peakRows: plan.chunked ? kvRows + localPassRows : kvRows,
    rowsPerToken: plan.chunked ? 2 * C + localPassRows : 1,
    fullAttentionRows: plan.n + k,
  };
}

/** One line for `ctx inspect` and the plan: the chunking and what it costs after k generated tokens. */
export function describeFocusPlan(plan: FocusPlan, k: number): string {
  const fmt = (n: number) => n.toLocaleString('en-US');
  if (!plan.chunked) return `focus: ${fmt(plan.n)} tokens, below the chunking threshold: plain attention`;
  const c = focusCost(plan, k);
  const S = plan.chunks[0][1] - plan.chunks[0][0];
  return (
    `focus: ${plan.chunks.length} chunks of ≤ ${fmt(S)} + tail ${fmt(plan.tailLen)}, local window ${fmt(plan.n - plan.localStart)}; ` +
    `KV ${fmt(c.kvRows)} rows/layer after ${fmt(k)} tokens (full attention: ${fmt(c.fullAttentionRows)}); ` +
    `each token re-encodes ${fmt(c.rowsPerToken)} rows`
  );
}
