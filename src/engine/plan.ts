// The memory plan of a run, known before any model runs: which strategy, how many KV rows it will
// hold at most, how many bytes, and whether the document fits — with the numbers when it does not.
// `ctx inspect` prints it; `ask`/`chat`/`summarize` refuse a run that does not fit, before reading.

import { totalmem } from 'node:os';
import type { ModelConfig } from '../model/config.js';
import { kvBytesPerToken } from '../model/config.js';
import { describeSoftplus } from '../model/softplus-config.js';
import { formatBytes } from '../units.js';
import { describeFocusPlan, focusCost, planFocus } from './strategies/focus-plan.js';
import { describeResolved, resolveStrategy, strategyReason, type ResolvedStrategy, type StrategyOptions } from './strategies/index.js';

export interface PlanInput {
  /** The document's tokens (with its citation markers): the count every printout names. */
  documentTokens: number;
  /** Tokens before the document: system prompt, chat template, BOS. Default 0. */
  prefixTokens?: number;
  /** Question and template tokens that follow the document. */
  questionTokens?: number;
  /** Answer reserve (max new tokens). */
  maxNewTokens?: number;
  /** Strategy name shortcut (same as strategyOptions.strategy). */
  strategy?: StrategyOptions['strategy'];
  strategyOptions?: StrategyOptions;
  /** Bytes per KV value: 4 for float32 backends, 2 for bf16. */
  kvBytesPerValue?: number;
  /** Refuse plans whose KV exceeds this (default: 75% of RAM). */
  memoryBudgetBytes?: number;
}

export interface RunPlan {
  strategy: ResolvedStrategy;
  description: string;
  nativeWindow: number;
  /** The document's tokens, as given (the one count of the document every printout uses). */
  documentTokens: number;
  /** Tokens before the document (system prompt, template, BOS). */
  prefixTokens: number;
  /** Prefix + document + question + answer reserve. */
  plannedTokens: number;
  /** Most KV rows held at once (per layer). */
  kvRows: number;
  kvBytes: number;
  /** Keys one query attends to at most (select, stream), or kvRows. */
  attendedRows: number;
  fits: boolean;
  /** What does not fit: the document (with its question), or the answer budget (--max-tokens) after it. */
  tooLong?: 'document' | 'answer';
  /** Why it does not fit, with the numbers and the option that would. */
  reason?: string;
  /** Things the user should know even when it fits (e.g. stream forgets the middle). */
  notes: string[];
  /** Why `auto` picked the strategy (null when the options named it). */
  strategyReason: string | null;
}

const fmt = (n: number) => n.toLocaleString('en-US');


/** KV rows a beacon run holds after `tokens` raw tokens (sink + memory + the open window). */
function beaconRows(c: ModelConfig, r: Extract<ResolvedStrategy, { name: 'beacon' }>, tokens: number): number {
  const b = c.beacon!;
  if (r.ratio === 0) return tokens;
  if (b.pos === 'interleave') {
    const windows = Math.floor(tokens / b.window);
    const open = tokens - windows * b.window;
    return (windows > 0 ? b.sinkSize : 0) + windows * (b.window / r.ratio) + open + Math.floor(open / r.ratio);
  }
  const full = tokens >= b.window ? Math.floor((tokens - b.window) / b.stride) + 1 : 0;
  return full * (b.stride / r.ratio) + Math.min(tokens, b.window) + b.stride / r.ratio;
}

/**
 * Document tokens outside stream's kept rows once the prompt has reached `length` tokens: the kept
 * rows are the first `sink` and the last `recent` of [prefix ; document ; question ; answer so far],
 * the document spans [prefix, prefix + document).
 */
function streamUnseen(prefix: number, document: number, sink: number, recent: number, length: number): number {
  const overlap = (a: number, b: number) => Math.max(0, Math.min(b, prefix + document) - Math.max(a, prefix));
  return document - overlap(0, sink) - overlap(Math.max(sink, length - recent), length);
}

/**
 * The plan for `input`. When it does not fit but would with a shorter answer, the answer budget is
 * what does not fit: the reason says so and gives the largest --max-tokens that fits.
 */
export function planRun(c: ModelConfig, input: PlanInput): RunPlan {
  const { plan, limit } = planOnce(c, input);
  const maxNew = input.maxNewTokens ?? 512;
  if (plan.fits || maxNew <= 1 || !planOnce(c, { ...input, maxNewTokens: 1 }).plan.fits) {
    return plan.fits ? plan : { ...plan, tooLong: 'document' };
  }
  // Fits with 1 answer token, not with maxNew: the largest budget that fits, by bisection.
  let lo = 1;
  let hi = maxNew - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (planOnce(c, { ...input, maxNewTokens: mid }).plan.fits) lo = mid;
    else hi = mid - 1;
  }
  const promptTokens = (input.prefixTokens ?? 0) + input.documentTokens + (input.questionTokens ?? 0);
  return {
    ...plan,
    tooLong: 'answer',
    reason:
      `the answer budget of ${fmt(maxNew)} tokens (--max-tokens) does not fit after the document and question ` +
      `(${fmt(promptTokens)} tokens): at most ${fmt(lo)} answer tokens fit here (${limit}). Use --max-tokens ${fmt(lo)} or less`,
  };
}

function planOnce(c: ModelConfig, input: PlanInput): { plan: RunPlan; limit: string } {
  const maxNew = input.maxNewTokens ?? 512;
  const prefix = input.prefixTokens ?? 0;
  const promptTokens = prefix + input.documentTokens + (input.questionTokens ?? 0);
  const plannedTokens = promptTokens + maxNew;
  const opts: StrategyOptions = { ...input.strategyOptions };
  if (input.strategy) opts.strategy = input.strategy;
  const r = resolveStrategy(c, opts, promptTokens, maxNew);
  const notes: string[] = [];
  let kvRows: number;
  let attendedRows: number;
  let fits = true;
  let reason: string | undefined;
  /** What ran out, in numbers only (no advice): for the answer-budget message. */
  let limit = '';
  const need = `${fmt(plannedTokens)} tokens (${prefix ? `prompt ${fmt(prefix)} + ` : ''}document ${fmt(input.documentTokens)} + question ${fmt(input.questionTokens ?? 0)} + answer ${fmt(maxNew)})`;

  switch (r.name) {
    case 'full':
      kvRows = plannedTokens;
      attendedRows = kvRows;
      if (plannedTokens > r.capacity) {
        fits = false;
        const factor = Math.ceil((plannedTokens / c.maxPositions) * 10) / 10;
        limit = `full attention on this model holds ${fmt(r.capacity)} tokens`;
        if (r.rope?.type === 'clex') {
          limit = `CLEX reaches ${fmt(r.capacity)} tokens on this model`;
          reason =
            `the run needs ${need}; CLEX reaches ${fmt(r.capacity)} tokens on this model (max_position_embeddings ${fmt(c.maxPositions)} × max_factor ${r.rope.factor}). ` +
            'Use --strategy select (any length)';
          break;
        }
        reason =
          `the run needs ${need}; full attention on this model holds ${fmt(r.capacity)} (max_position_embeddings ${fmt(c.maxPositions)}` +
          `${r.rope ? ` × rope ${r.rope.factor}` : ''}). Use --strategy select (any length)` +
          (c.beacon ? ' or --strategy beacon' : '') +
          `, or --rope yarn --rope-factor ${factor} (training-free scaling degrades beyond about 2–4×)`;
      }
      break;
    case 'stream':
      kvRows = Math.min(plannedTokens, r.sink + r.recent);
      attendedRows = kvRows;
      if (plannedTokens > r.sink + r.recent) {
        const unseen = (length: number) => streamUnseen(prefix, input.documentTokens, r.sink, r.recent, length);
        const atStart = unseen(promptTokens);
        const atEnd = unseen(plannedTokens);
        notes.push(
          `stream keeps the first ${fmt(r.sink)} and the last ${fmt(r.recent)} tokens: the answer never sees ${fmt(atStart)} of the document's ${fmt(input.documentTokens)} tokens (its middle)` +
            (atEnd > atStart ? `, ${fmt(atEnd)} by the end of a ${fmt(maxNew)}-token answer` : ''),
        );
      }
      break;
    case 'select':
      kvRows = plannedTokens;
      attendedRows = Math.min(kvRows, r.nInit + r.topK + Math.max(r.nLocal, r.chunk));
      break;
    case 'beacon': {
      kvRows = beaconRows(c, r, plannedTokens);
      attendedRows = kvRows;
      const choice = r.ratioChoice;
      const ratio = `beacon at ratio ${r.ratio} ${choice.forced ? '(--beacon-ratio)' : `(the largest of [${choice.candidates}])`}`;
      if (!choice.fits) {
        fits = false;
        limit = `beacon at ratio ${r.ratio} holds ${fmt(choice.maxTokens)} tokens`;
        reason =
          `the run needs ${fmt(choice.neededTokens)} tokens (prompt ${fmt(promptTokens)} + the checkpoint's answer reserve ${fmt(choice.neededTokens - promptTokens)}); ` +
          `${ratio} holds ${fmt(choice.maxTokens)} within ${fmt(c.maxPositions)} positions. Use --strategy select (any length), ` +
          `or force a larger ratio with --beacon-ratio (untrained ratios lose detail)`;
      } else if (plannedTokens > choice.maxTokens) {
        // The ratio holds the prompt and the checkpoint's reserve, not the whole answer budget:
        // beacon would end the answer early (planRun turns this into the --max-tokens that fits).
        fits = false;
        limit = `beacon at ratio ${r.ratio} holds ${fmt(choice.maxTokens)} tokens`;
        reason = `the run needs ${need}; ${ratio} holds ${fmt(choice.maxTokens)} within ${fmt(c.maxPositions)} positions`;
      }
      break;
    }
    case 'focus': {
      // KV and positions from the chunk plan of a prompt of this length (its ids unknown: BOS assumed).
      const focus = planFocus(promptTokens, r.settings);
      const cost = focusCost(focus, maxNew);
      kvRows = cost.peakRows;
      attendedRows = cost.positions;
      // A FocusLLM checkpoint has no Activation Beacon weights: beacon's cost is shown at its usual
      // ratio 8, one row per 8 tokens (its open window aside).
      const compare = { selectRows: plannedTokens, beacon: { ratio: 8, rows: Math.ceil(plannedTokens / 8) } };
      notes.push(describeFocusPlan(focus, maxNew, compare));
      if (cost.positions > r.capacity) {
        fits = false;
        limit = `focus would use ${fmt(cost.positions)} positions; the model has ${fmt(r.capacity)}`;
        reason =
          `the run needs ${need}; focus uses ${fmt(cost.positions)} positions for it ` +
          (focus.chunked
            ? `(chunk passes of up to ${fmt(Math.max(...focus.chunkPassLengths))} rows, a local pass of ${fmt(focus.chunks.length)} candidates + ${fmt(focus.prefillRows)} rows, each with the answer)`
            : `(plain attention below its chunking threshold ${fmt(r.settings.shortPromptLimit)})`) +
          `; the model has ${fmt(r.capacity)}. Use --strategy select (any length)`;
      }
      break;
    }
  }
  const kvBytes = kvRows * kvBytesPerToken(c, input.kvBytesPerValue ?? 4);
  const budget = input.memoryBudgetBytes ?? Math.floor(totalmem() * 0.75);
  if (fits && kvBytes > budget) {
    fits = false;
    limit = `${r.name} would hold ${fmt(kvRows)} KV rows = ${formatBytes(kvBytes)}, more than the memory budget ${formatBytes(budget)}`;
    reason = `${r.name} holds ${fmt(kvRows)} KV rows = ${formatBytes(kvBytes)}, more than the memory budget ${formatBytes(budget)}` +
      (r.name === 'beacon' ? '' : c.beacon ? '; --strategy beacon condenses it' : '; use --strategy stream (forgets the middle) or a smaller document');
  }
  const plan: RunPlan = {
    strategy: r,
    // Softplus-attention models say so on the plan line (and in cache listings).
    description: `${describeResolved(r, { prompt: promptTokens, planned: plannedTokens })}${c.softplus ? `, ${describeSoftplus(c.softplus)}` : ''}`,
    nativeWindow: c.maxPositions,
    documentTokens: input.documentTokens,
    prefixTokens: prefix,
    plannedTokens,
    kvRows,
    kvBytes,
    attendedRows,
    fits,
    reason,
    notes,
    strategyReason: strategyReason(c, opts, promptTokens, maxNew),
  };
  return { plan, limit };
}
