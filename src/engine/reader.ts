// Reading a document and answering about it: the plain API that the CLI commands and the UIs sit
// on. Everything long reports progress through callbacks; nothing here prints.
//
//   tokenize (workers) → plan (refuse early if it does not fit) → read prefix + document through
//   the strategy → for each question: feed the question, generate the answer.

import type { Backend } from '../backend/contract.js';
import { CtxError } from '../errors.js';
import type { Document } from '../input/document.js';
import type { Model } from '../model/model.js';
import type { StreamingDetokenizer, TextTokenizer } from '../model/tokenizer.js';
import { Conversation } from './conversation.js';
import { generate, type FinishReason, type GenerateEvent } from './generate.js';
import { planRun, type RunPlan } from './plan.js';
import type { SamplingOptions } from './sampler.js';
import { Session } from './session.js';
import type { StrategyOptions } from './strategies/index.js';

export interface Engine {
  model: Model;
  tokenizer: TextTokenizer;
  backend: Backend;
  /** Makes a fresh streaming detokenizer (never emits half a character). */
  detokenizer: () => StreamingDetokenizer;
}

export interface TokenizedDocument {
  /** Document token ids (segments encoded independently, concatenated). */
  ids: Int32Array;
  /** Index of each segment's first token (token → source, for citations). */
  segmentStarts: Int32Array;
  seconds: number;
}

export async function tokenizeDocument(
  engine: Engine,
  doc: Document,
  onProgress?: (doneChars: number, totalChars: number) => void,
  signal?: AbortSignal,
): Promise<TokenizedDocument> {
  const t0 = performance.now();
  const { ids, segmentStarts } = await engine.tokenizer.encodeSegments(doc.segments, { onProgress, signal });
  return { ids, segmentStarts, seconds: (performance.now() - t0) / 1000 };
}

export interface PlanOptions {
  strategy: StrategyOptions;
  maxNewTokens: number;
  /** Tokens expected after the document (question and template). */
  questionTokens: number;
  memoryBudgetBytes?: number;
}

/** The run's plan for the document; throws `doesNotFit` with the numbers when it cannot be read. */
export function planDocument(engine: Engine, prefixTokens: number, documentTokens: number, o: PlanOptions): RunPlan {
  const plan = planRun(engine.model.config, {
    documentTokens: prefixTokens + documentTokens,
    questionTokens: o.questionTokens,
    maxNewTokens: o.maxNewTokens,
    strategyOptions: o.strategy,
    kvBytesPerValue: engine.backend.kvBytesPerRow / (2 * engine.model.config.numLayers * engine.model.config.numKvHeads * engine.model.config.headDim),
    memoryBudgetBytes: o.memoryBudgetBytes,
  });
  if (!plan.fits) throw new CtxError('doesNotFit', `the document does not fit: ${plan.reason}`);
  return plan;
}

export interface ReadProgress {
  /** Prompt tokens read so far, and in total (system prefix + document). */
  done: number;
  total: number;
  elapsedSeconds: number;
  tokensPerSecond: number;
  etaSeconds: number;
  kvRows: number;
  kvBytes: number;
  /** Tokens read per KV row held (beacon > 1). */
  compression: number;
}

/** Reads [prefix ; document] into a new session, reporting progress after every step. */
export async function readDocument(
  engine: Engine,
  plan: RunPlan,
  tokens: Int32Array,
  opts: { signal?: AbortSignal; onProgress?: (p: ReadProgress) => void } = {},
): Promise<{ session: Session; seconds: number }> {
  const session = new Session(engine.backend, plan.strategy);
  const t0 = performance.now();
  const report = (done: number) => {
    if (!opts.onProgress) return;
    const elapsed = (performance.now() - t0) / 1000;
    const rate = elapsed > 0 ? done / elapsed : 0;
    const s = session.stats();
    opts.onProgress({
      done,
      total: tokens.length,
      elapsedSeconds: elapsed,
      tokensPerSecond: rate,
      etaSeconds: rate > 0 ? (tokens.length - done) / rate : NaN,
      kvRows: s.totalRows,
      kvBytes: s.kvBytes,
      compression: s.totalRows > 0 ? done / s.totalRows : 1,
    });
  };
  try {
    await session.feed(tokens, { signal: opts.signal, onStep: report, noLogits: true });
  } catch (e) {
    session.dispose();
    throw e;
  }
  return { session, seconds: (performance.now() - t0) / 1000 };
}

export interface AnswerOptions extends SamplingOptions {
  maxNewTokens: number;
  stopStrings?: string[];
  signal?: AbortSignal;
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
 * Asks one question of a read document (the first, or a follow-up); yields the answer's text pieces
 * and returns the result. The exchange is recorded in the conversation.
 */
export async function* askQuestion(
  engine: Engine,
  session: Session,
  conversation: Conversation,
  question: string,
  o: AnswerOptions,
): AsyncGenerator<string, AnswerResult> {
  const t0 = performance.now();
  const last = conversation.history().length;
  const endedWithEos = last > 0 && conversation.lastReason === 'eos';
  const prompt = last === 0 ? conversation.firstQuestion(question) : conversation.followUp(question, endedWithEos);
  if (prompt.length >= session.remainingCapacity()) {
    throw new CtxError('doesNotFit', `the question needs ${prompt.length} more tokens but the ${session.resolved.name} strategy has room for ${session.remainingCapacity()}`);
  }
  let answer = '';
  let firstToken = NaN;
  let done: Extract<GenerateEvent, { type: 'done' }> | undefined;
  for await (const e of generate(session, prompt, {
    ...o,
    maxTokens: Math.min(o.maxNewTokens, session.remainingCapacity() - prompt.length),
    stopTokens: conversation.stopTokens(),
    detokenizer: engine.detokenizer(),
  })) {
    if (e.type === 'done') {
      done = e;
      break;
    }
    if (Number.isNaN(firstToken)) firstToken = (performance.now() - t0) / 1000;
    answer += e.text;
    if (e.text) yield e.text;
  }
  conversation.record({ question, answer }, done!.reason);
  return {
    answer,
    reason: done!.reason,
    generatedTokens: done!.generated,
    promptTokens: prompt.length,
    firstTokenSeconds: firstToken,
    seconds: (performance.now() - t0) / 1000,
  };
}

export { Conversation };
