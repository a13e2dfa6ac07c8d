// Reading a document and answering about it, step by step: the pieces the library API (open.ts,
// open-document.ts, summarize/) is made of. Everything long reports progress through callbacks;
// nothing here prints.
//
//   tokenize (workers) → plan (refuse early if it does not fit) → read prefix + document through
//   the strategy → for each question: feed the question, generate the answer.

import { CtxError } from '../errors.js';
import type { ReadProgress } from './events.js';
import type { Conversation, Turn } from './conversation.js';
import { generate, type FinishReason, type GenerateEvent } from './generate.js';
import type { LoadedModel } from './loaded-model.js';
import { planRun, type RunPlan } from './plan.js';
import { planModelOf, refuseUnlessFits } from './prompt-plan.js';
import { ReadEta } from './read-eta.js';
import type { PromptFormat } from './prompt-format.js';
import type { SamplingOptions } from './sampler.js';
import { Session } from './session.js';
import type { StrategyOptions } from './strategies/index.js';

export type { ReadProgress } from './events.js';

export interface PlanOptions {
  strategy: StrategyOptions;
  maxNewTokens: number;
  /** Tokens expected after the document (question and template). */
  questionTokens: number;
  memoryBudgetBytes?: number;
}

/** The run's plan for the document; throws `doesNotFit` with the numbers when it cannot be read. */
export function planDocument(loaded: LoadedModel, prefixTokens: number, documentTokens: number, o: PlanOptions): RunPlan {
  const plan = planRun(loaded.model.config, {
    prefixTokens,
    documentTokens,
    questionTokens: o.questionTokens,
    maxNewTokens: o.maxNewTokens,
    strategyOptions: o.strategy,
    kvBytesPerValue: planModelOf(loaded).kvBytesPerValue,
    memoryBudgetBytes: o.memoryBudgetBytes,
  });
  return refuseUnlessFits(plan);
}


/**
 * A prompt too long to hold, as it is fed: its length, and its ids in order, in pieces of any size
 * (the prefix, then the document as it is encoded again).
 */
export interface StreamedPrompt {
  length: number;
  pieces: (signal?: AbortSignal) => AsyncIterable<Int32Array>;
}

/** Tokens per feed of a streamed prompt, about: enough for steps to stay long, few enough to hold. */
const FEED_BLOCK_TOKENS = 1 << 16;

/**
 * Where a streamed prompt may be cut between feeds so that reading it in several feeds leaves the
 * session exactly as one feed would: at the strategy's own step boundaries (stream: every chunk;
 * beacon v3: every window; beacon v1: the first window, then every stride), or null when the
 * strategy reads a prompt in one feed (full, select, focus: the window bounds their prompts).
 */
export function feedBlocks(r: RunPlan['strategy'], target = FEED_BLOCK_TOKENS): { first: number; every: number } | null {
  const grow = (step: number) => step * Math.max(1, Math.floor(target / step));
  if (r.name === 'stream') return { first: grow(r.chunk), every: grow(r.chunk) };
  if (r.name === 'beacon' && r.version === 'v3') return { first: grow(r.window), every: grow(r.window) };
  if (r.name === 'beacon') return { first: r.window + grow(r.stride), every: grow(r.stride) };
  return null;
}

/** Pieces regrouped into blocks of the given sizes (the last one shorter). */
async function* regroup(pieces: AsyncIterable<Int32Array>, first: number, every: number): AsyncGenerator<Int32Array> {
  let block = new Int32Array(first);
  let filled = 0;
  for await (const piece of pieces) {
    for (let at = 0; at < piece.length; ) {
      const n = Math.min(block.length - filled, piece.length - at);
      block.set(piece.subarray(at, at + n), filled);
      filled += n;
      at += n;
      if (filled === block.length) {
        yield block;
        block = new Int32Array(every);
        filled = 0;
      }
    }
  }
  if (filled > 0) yield block.subarray(0, filled);
}

/**
 * Reads [prefix ; document] into a new session, reporting progress after every step. A streamed
 * prompt is fed in blocks cut where the strategy steps anyway (feedBlocks), so memory holds one
 * block, not the document; a strategy that reads a prompt in one feed gets it whole.
 */
export async function readDocument(
  loaded: LoadedModel,
  plan: RunPlan,
  prompt: Int32Array | StreamedPrompt,
  opts: { signal?: AbortSignal; onProgress?: (p: ReadProgress) => void; /** About how many tokens a streamed prompt's feeds take (tests). */ blockTokens?: number } = {},
): Promise<{ session: Session; seconds: number }> {
  const session = new Session(loaded.backend, plan.strategy);
  const total = prompt.length;
  const t0 = performance.now();
  // The time left from a cost model fitted as the read goes (a token costs more as the KV grows).
  const eta = new ReadEta(total, plan.kvRows);
  let before = 0;
  const report = (consumed: number) => {
    if (!opts.onProgress) return;
    const done = before + consumed;
    const elapsed = (performance.now() - t0) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const s = session.stats();
    eta.observe(done, s.totalRows, elapsed);
    opts.onProgress({
      done,
      total,
      elapsedSeconds: elapsed,
      tokensPerSecond: rate,
      etaSeconds: eta.remaining(),
      kvRows: s.totalRows,
      kvBytes: s.kvBytes,
      compression: s.totalRows > 0 ? done / s.totalRows : 1,
    });
  };
  const feed = { signal: opts.signal, onStep: report, noLogits: true };
  try {
    const blocks = feedBlocks(plan.strategy, opts.blockTokens);
    if (prompt instanceof Int32Array) await session.feed(prompt, feed);
    else if (blocks === null) await session.feed(await gather(prompt, opts.signal), feed);
    else {
      for await (const block of regroup(prompt.pieces(opts.signal), blocks.first, blocks.every)) {
        await session.feed(block, feed);
        before += block.length;
      }
    }
  } catch (e) {
    session.dispose();
    throw e;
  }
  return { session, seconds: (performance.now() - t0) / 1000 };
}

async function gather(prompt: StreamedPrompt, signal?: AbortSignal): Promise<Int32Array> {
  const out = new Int32Array(prompt.length);
  let at = 0;
  for await (const p of prompt.pieces(signal)) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export interface AnswerOptions extends SamplingOptions {
  maxNewTokens: number;
  stopStrings?: string[];
  /** Stops everything at once, even while the question is being read (the session may then hold half of it). */
  signal?: AbortSignal;
  /**
   * Stops this answer, keeping what was written (reason "aborted"). It takes effect once the answer
   * has begun, never while the question itself is being read, so the session always holds whole
   * exchanges; given already aborted, the answer stops after its first piece.
   */
  stop?: AbortSignal;
  /** Each piece of the answer's text as it is generated. */
  onText?: (text: string) => void;
}

export interface AnswerResult {
  answer: string;
  reason: FinishReason;
  generatedTokens: number;
  promptTokens: number;
  firstTokenSeconds: number;
  seconds: number;
}

/**
 * Asks one question of a read document (the first, or a follow-up): feeds it, generates the answer
 * piece by piece (onText) and records the exchange in the conversation. The one answer loop of ctx.
 */
export async function askQuestion(
  loaded: LoadedModel,
  session: Session,
  conversation: Conversation,
  question: string,
  o: AnswerOptions,
): Promise<AnswerResult> {
  const t0 = performance.now();
  const prompt = conversation.nextQuestion(question);
  if (prompt.length >= session.remainingCapacity()) {
    throw new CtxError('doesNotFit', `the question needs ${prompt.length} more tokens but the ${session.resolved.name} strategy has room for ${session.remainingCapacity()}`);
  }
  // `stop` reaches generation only once the answer has begun (see AnswerOptions.stop).
  const stopAnswer = new AbortController();
  let begun = false;
  const onStop = () => begun && stopAnswer.abort();
  o.stop?.addEventListener('abort', onStop);
  const signal = o.signal ? AbortSignal.any([o.signal, stopAnswer.signal]) : stopAnswer.signal;

  let answer = '';
  let firstToken = NaN;
  let done: Extract<GenerateEvent, { type: 'done' }> | undefined;
  try {
    for await (const e of generate(session, prompt, {
      ...o,
      signal,
      maxTokens: Math.min(o.maxNewTokens, session.remainingCapacity() - prompt.length),
      stopTokens: conversation.stopTokens(),
      detokenizer: loaded.detokenizer(),
    })) {
      if (e.type === 'done') {
        done = e;
        break;
      }
      if (Number.isNaN(firstToken)) firstToken = (performance.now() - t0) / 1000;
      answer += e.text;
      if (!e.text) continue;
      begun = true;
      o.onText?.(e.text);
      if (o.stop?.aborted) stopAnswer.abort();
    }
  } finally {
    o.stop?.removeEventListener('abort', onStop);
  }
  conversation.record({ question, answer, answerTokens: done!.fed, deferredToken: done!.deferred }, done!.reason);
  return {
    answer,
    reason: done!.reason,
    generatedTokens: done!.generated,
    promptTokens: prompt.length,
    firstTokenSeconds: firstToken,
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * A warning for an answer with no text (the model ended at once, or wrote only whitespace), or null:
 * an empty answer is never silent. A plain prompt is the usual cause with a base model.
 */
export function emptyAnswerWarning(r: AnswerResult, format: PromptFormat): string | null {
  if (r.answer.trim() !== '') return null;
  const ended = r.reason === 'eos' ? 'the model ended its answer at once' : r.reason === 'stop' ? 'a stop text ended the answer at once' : `the answer ended (${r.reason})`;
  const why = format.render === null ? '; it read a plain-text prompt (no chat template): a chat model, or --template NAME|FILE, may answer' : '';
  return `the answer is empty: ${ended} after ${r.generatedTokens} token${r.generatedTokens === 1 ? '' : 's'}${why}`;
}

/**
 * Puts an earlier exchange back into a session without generating: its question as it was asked,
 * its answer's tokens (its text encoded again when they were not kept) and how it ended, so that
 * follow-ups continue from it as they would have then (chat --continue). Throws `doesNotFit` when
 * the strategy has no room for it.
 */
export async function replayExchange(loaded: LoadedModel, session: Session, conversation: Conversation, turn: Turn, signal?: AbortSignal): Promise<void> {
  const prompt = conversation.nextQuestion(turn.question);
  // As generate() left it: the answer's ids fed, then one deferred. Without kept ids, the text is
  // encoded again and its last token deferred (close, though not always token for token).
  const fed = turn.answerTokens ? [...turn.answerTokens] : loaded.tokenizer.encode(turn.answer, { addSpecialTokens: false });
  let deferred = turn.deferredToken;
  if (!turn.answerTokens) deferred = fed.pop() ?? null;
  const vocab = loaded.model.config.vocabSize;
  if ([...fed, deferred ?? 0].some((id) => !(Number.isInteger(id) && id >= 0 && id < vocab))) {
    throw new CtxError('input', `an earlier answer holds token ids this model does not have (vocabulary ${vocab})`);
  }
  if (prompt.length + fed.length + 1 >= session.remainingCapacity()) {
    throw new CtxError('doesNotFit', `the earlier conversation needs ${prompt.length + fed.length + 1} more tokens but the ${session.resolved.name} strategy has room for ${session.remainingCapacity()}`);
  }
  // Fed as generate() fed them — the question at once, then the answer token by token (a decoding
  // step attends differently from a chunk) — so the session ends up exactly as it was.
  await session.feed(prompt, { signal });
  for (const id of fed) await session.feed(Int32Array.of(id), { decoding: true, signal });
  if (deferred !== null && deferred !== undefined) session.defer(deferred);
  conversation.record({ question: turn.question, answer: turn.answer, answerTokens: fed, deferredToken: deferred ?? null }, turn.reason ?? 'length');
}
