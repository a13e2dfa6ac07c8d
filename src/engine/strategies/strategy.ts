// What every long-context strategy provides to the session. A strategy turns a stream of raw
// tokens into backend steps (contract.ts): it chooses the rows of each step, their positions, the
// mask, and which stored rows survive. It never touches a tensor.

import type { RopeTable, Sequence, StepRequest } from '../../backend/contract.js';
import type { ModelConfig } from '../../model/config.js';

export type StrategyName = 'full' | 'stream' | 'select' | 'beacon' | 'focus';

export interface FeedOptions {
  /**
   * Return the logits of every raw token fed (goldens, perplexity), not only the last one. focus
   * computes logits only in its local pass: it returns that pass's rows (a BOS row first where it
   * puts one in front), or one row per token while decoding.
   */
  allLogits?: boolean;
  /** True while generating: one token per call (select then uses its reuse cache). */
  decoding?: boolean;
  /**
   * The caller does not read the logits (a document read before its question): a strategy may skip
   * the work only they need and return none. focus then runs only its chunks' own rows; its tails,
   * candidates and local pass wait for the question.
   */
  noLogits?: boolean;
  /** Called after each step with the raw tokens consumed so far in this feed. */
  onStep?: (consumed: number) => void;
  signal?: AbortSignal;
}

/** KV rows held, by kind, for plans, progress and tests (beacon and focus names match the golden cases). */
export interface MemoryStats {
  totalRows: number;
  /** Raw tokens the strategy has consumed (document position). */
  consumed: number;
  /** A count, or one count per part (focus: per chunk). */
  [kind: string]: number | number[];
}

/** Serializable strategy state (saved with the backend's sequence snapshot). */
export type StrategyState = Record<string, unknown>;

export interface Strategy {
  readonly name: StrategyName;
  /** Feeds raw tokens; returns logits [k, V]: the last token's (k = 1) or every token's. */
  feed(tokens: Int32Array, opts?: FeedOptions): Promise<Float32Array>;
  stats(): MemoryStats;
  saveState(): StrategyState;
  loadState(state: StrategyState): void;
  /** Tokens that can still be fed before the strategy runs out of positions (Infinity if none). */
  remainingCapacity(): number;
  /**
   * Where the strategy's rows live, when not only in ctx.seq (focus: one sequence per chunk too):
   * the session counts, snapshots, restores (after loadState) and frees them through it.
   */
  readonly storage?: RowStorage;
}

/** A strategy's KV rows as the session sees them: ctx.seq itself, or several sequences as one. */
export type RowStorage = Pick<Sequence, 'kvBytes' | 'snapshot' | 'restore' | 'dispose'>;

/** What a strategy is built from. */
export interface StrategyContext {
  seq: Sequence;
  /** Another sequence on the same backend (focus runs each chunk in one of its own). */
  newSequence: () => Sequence;
  config: ModelConfig;
  /** RoPE table for a step whose largest position is seqLen − 1. */
  rope: (seqLen: number) => RopeTable;
  /**
   * The table is that of a forward call's total length (CLEX): `full` then gives every chunk of a
   * feed the table of the length the feed reaches, so a prompt cut into steps is rotated as one
   * call would rotate it. Absent = false.
   */
  ropePerCall?: boolean;
}

export function range(start: number, n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => start + i);
}

/**
 * Runs a step and returns its logits. Yields to the event loop first, so that Ctrl-C, timers and
 * key presses are handled between steps even on a backend that computes synchronously, then checks
 * cancellation.
 */
export async function runStep(ctx: StrategyContext, req: StepRequest, signal?: AbortSignal): Promise<Float32Array> {
  await new Promise((resolve) => setImmediate(resolve));
  signal?.throwIfAborted();
  const res = await ctx.seq.step(req);
  return res.logits;
}

/**
 * The step loop of the strategies that feed raw tokens as they are (full, stream, select): chunks
 * of `chunk` tokens (one token while decoding), each one causal step at positions M..M+n−1, logits
 * for every row (allLogits) or only the last row of the last chunk. `before(n)` runs ahead of each
 * chunk (stream evicts there); `extra` adds to each request (select's SelectSpec).
 */
export async function feedInChunks(
  ctx: StrategyContext,
  tokens: Int32Array,
  chunk: number,
  opts: FeedOptions,
  hooks: { before?: (n: number) => void; extra?: () => Partial<StepRequest>; ropeLength?: (M: number, n: number) => number } = {},
): Promise<Float32Array> {
  const parts: Float32Array[] = [];
  const size = opts.decoding ? 1 : chunk;
  for (let s = 0; s < tokens.length; s += size) {
    const piece = tokens.subarray(s, Math.min(s + size, tokens.length));
    const n = piece.length;
    hooks.before?.(n);
    const M = ctx.seq.length;
    const last = s + n === tokens.length;
    const logits = await runStep(
      ctx,
      {
        tokens: piece,
        positions: range(M, n),
        mask: { kind: 'causal' },
        logitRows: opts.allLogits ? range(0, n) : last ? Int32Array.of(n - 1) : new Int32Array(0),
        rope: ctx.rope(hooks.ropeLength ? hooks.ropeLength(M, n) : M + n),
        ...hooks.extra?.(),
      },
      opts.signal,
    );
    if (logits.length) parts.push(logits);
    opts.onStep?.(s + n);
  }
  return concatLogits(parts);
}

/** Concatenates [k_i, V] logit blocks. */
export function concatLogits(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
