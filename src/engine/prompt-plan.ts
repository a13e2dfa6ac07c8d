// The plan of a document's run from what is known before any backend starts: the model's config and
// tokenizer, the prompt format and system prompt, and the document's tokens. `ask`, `chat`,
// one-pass summaries (open.ts) and `ctx inspect` all plan through planPrompt, so they print the same
// document count, KV rows and bytes for the same inputs.
//
//   prompt = [prefix: system, template, BOS] [document, with citation markers when cite is on]
//            [question: exactly when known, else UNKNOWN_QUESTION_TOKENS more than an empty one]
//            [answer: up to maxTokens]

import type { ModelConfig } from '../model/config.js';
import type { TextTokenizer } from '../model/tokenizer.js';
import { CtxError } from '../errors.js';
import { Conversation } from './conversation.js';
import type { LoadedModel } from './loaded-model.js';
import { planRun, type RunPlan } from './plan.js';
import type { PromptFormat } from './prompt-format.js';
import type { StrategyOptions } from './strategies/index.js';

/** Tokens a question may take when it is not known at planning time (chat follow-ups, inspect). */
export const UNKNOWN_QUESTION_TOKENS = 64;

/** What a plan needs of a model: no weights, no backend. */
export interface PlanModel {
  config: ModelConfig;
  tokenizer: TextTokenizer;
  /** Bytes per stored K or V value: 4 for float32 KV (cpu, reference), 2 for bf16. */
  kvBytesPerValue: number;
}

export interface PromptPlanOptions {
  strategy?: StrategyOptions;
  /** Answer reserve. Default 512. */
  maxTokens?: number;
  /** Refuse runs whose KV would exceed this (default 75% of RAM). */
  maxKvMemory?: number;
}

export interface PromptPlan {
  plan: RunPlan;
  conversation: Conversation;
  /** The tokens before the document. */
  prefix: Int32Array;
  /** Tokens after the document: the question exactly, or the allowance for an unknown one. */
  questionTokens: number;
  questionKnown: boolean;
}

/**
 * Plans a run over `documentTokens` document tokens. `after` is the text after the document when it
 * is known (the question with its citation instruction), null when it is not. The plan may not fit:
 * callers refuse (planDocument's message) or show it (inspect).
 */
export function planPrompt(m: PlanModel, format: PromptFormat, system: string | undefined, documentTokens: number, after: string | null, o: PromptPlanOptions = {}): PromptPlan {
  const conversation = new Conversation(m.tokenizer, system, format);
  const prefix = conversation.documentPrefix();
  const questionTokens = after !== null ? conversation.firstQuestion(after).length : conversation.firstQuestion('?').length + UNKNOWN_QUESTION_TOKENS;
  const plan = planRun(m.config, {
    prefixTokens: prefix.length,
    documentTokens,
    questionTokens,
    maxNewTokens: o.maxTokens ?? 512,
    strategyOptions: o.strategy ?? {},
    kvBytesPerValue: m.kvBytesPerValue,
    memoryBudgetBytes: o.maxKvMemory,
  });
  return { plan, conversation, prefix, questionTokens, questionKnown: after !== null };
}

/** A loaded model as planPrompt sees it (bytes per KV value from its backend). */
export function planModelOf(loaded: LoadedModel): PlanModel {
  const c = loaded.model.config;
  return { config: c, tokenizer: loaded.tokenizer, kvBytesPerValue: loaded.backend.kvBytesPerRow / (2 * c.numLayers * c.numKvHeads * c.headDim) };
}

/** Throws `doesNotFit` with the plan's numbers unless it fits. */
export function refuseUnlessFits(plan: RunPlan): RunPlan {
  if (!plan.fits) throw new CtxError('doesNotFit', plan.tooLong === 'answer' ? plan.reason! : `the document does not fit: ${plan.reason}`);
  return plan;
}
