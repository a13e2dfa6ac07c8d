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

import type { FocusSettings } from '../../model/focus-config.js';

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

/**
 * The plan of `prompt`, or of a prompt of that many tokens whose ids are not known yet (run plans,
 * `ctx inspect`): then the BOS checks assume a BOS is put in front, the case with one row more.
 */
export function planFocus(prompt: ArrayLike<number> | number, s: FocusSettings): FocusPlan {
  const N = typeof prompt === 'number' ? prompt : prompt.length;
  const idAt = (i: number) => (typeof prompt === 'number' ? -1 : prompt[i]);
  if (N < s.shortPromptLimit) {
    const bos = N === 0 || idAt(0) !== s.bosId;
    return { chunked: false, n: N, nContext: 0, chunks: [], tailLen: 0, tailStart: N, tailBos: false, localStart: 0, localBos: bos, prefillRows: N + (bos ? 1 : 0), chunkPassLengths: [] };
  }
  const LW = s.localWindow;
  const S = s.stride;
  const nContext = N - LW;
  const chunks: Array<[number, number]> = [];
  for (let start = 0; start < nContext; start += S) chunks.push([start, Math.min(start + S, nContext)]);
  const tailLen = Math.min(s.tailCap, S, LW);
  const tailStart = N - tailLen;
  const tailBos = idAt(tailStart) !== s.bosId;
  const localBos = idAt(nContext) !== s.bosId;
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
  /** RoPE positions the passes use: max(S_i + |P| + k, C + LW + 1 + k) chunked, else N + 1 + k (BOS counted). */
  positions: number;
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
    positions: plan.chunked ? Math.max(Math.max(...plan.chunkPassLengths) + k, C + localPassRows) : localPassRows,
  };
}

/** What the other strategies would hold for the same tokens, for the plan line (engine/plan.ts). */
export interface FocusComparison {
  /** KV rows select holds (all of them, like full attention); it runs one row per generated token. */
  selectRows: number;
  /** KV rows beacon holds at `ratio` (condensed); one row per generated token. */
  beacon: { ratio: number; rows: number };
}

/**
 * One line for `ctx inspect` and the plan: the chunking and what it costs after k generated tokens,
 * against full attention, or against select and beacon when `compare` is given.
 */
export function describeFocusPlan(plan: FocusPlan, k: number, compare?: FocusComparison): string {
  const fmt = (n: number) => n.toLocaleString('en-US');
  if (!plan.chunked) return `focus: ${fmt(plan.n)} tokens, below the chunking threshold: plain attention`;
  const c = focusCost(plan, k);
  const S = plan.chunks[0][1] - plan.chunks[0][0];
  const others = compare
    ? `select: ${fmt(compare.selectRows)}, beacon at ratio ${compare.beacon.ratio}: ≈ ${fmt(compare.beacon.rows)}`
    : `full attention: ${fmt(c.fullAttentionRows)}`;
  return (
    `focus: ${plan.chunks.length} chunks of ≤ ${fmt(S)} + tail ${fmt(plan.tailLen)}, local window ${fmt(plan.n - plan.localStart)}; ` +
    `KV ${fmt(c.kvRows)} rows/layer after ${fmt(k)} tokens (${others}); ` +
    `each token re-encodes ${fmt(c.rowsPerToken)} rows${compare ? ' (select and beacon: 1)' : ''}`
  );
}
