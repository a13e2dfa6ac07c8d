// Running a hierarchical summary: the limits its plan is made with (measured on this model's prompts),
// then every step of the plan in order — each in a fresh session with full attention, within the
// model's native window — children before parents, the final summary last.
//
// Each step's prompt is [system ; text ; instruction]: the text is a section of the document or the
// summaries of the step's children (combineText), the instruction comes from prompts.ts.

import { CtxError } from '../../errors.js';
import { Conversation } from '../conversation.js';
import type { LoadedModel } from '../loaded-model.js';
import { askQuestion, planDocument, readDocument, type AnswerResult } from '../reader.js';
import { ropeCapacity } from '../rope.js';
import type { PromptFormat } from '../prompt-format.js';
import type { SamplingOptions } from '../sampler.js';
import { combineInstruction, finalInstruction, PART_TOKENS, sectionInstruction, wholeInstruction, type SummaryRequest } from './prompts.js';
import { combineText, stepsInOrder, type PlanNode, type SectionLimits, type SummaryPlan } from './sections.js';

export interface HierarchicalOptions {
  request: SummaryRequest;
  system?: string;
  /** How each step's prompt is written; default: the model's chat template. */
  format?: PromptFormat;
  /** Most tokens of the final summary (--max-tokens); part summaries take at most PART_TOKENS. */
  maxTokens: number;
  /** A smaller section size than the window allows (--section-tokens). */
  sectionTokens?: number;
}

export interface SummaryLimits extends SectionLimits {
  /** Positions one step may use (the model's window with full attention). */
  window: number;
  /** Most tokens of the final summary. */
  finalTokens: number;
  /** Why the window is too small for a hierarchical summary ("with its prompts … a section would hold 10 tokens …"), or null. */
  problem: string | null;
}

/** The window a step reads with full attention: max_position_embeddings × the model's own rope scaling. */
export function nativeWindow(loaded: LoadedModel): number {
  return ropeCapacity(loaded.model.config, null);
}

const fmt = (n: number) => n.toLocaleString('en-US');

/**
 * Section and combine sizes for this model and request: the window minus the prompt around the text
 * (measured with the model's template and tokenizer) minus the summary's reserve. Any section may be
 * the only one (then it gets the final instruction and reserve), so both are allowed for.
 */
export function summaryLimits(loaded: LoadedModel, o: HierarchicalOptions): SummaryLimits {
  const conversation = new Conversation(loaded.tokenizer, o.system, o.format);
  const prefix = conversation.documentPrefix().length;
  const after = (instruction: string) => conversation.firstQuestion(instruction).length;
  const window = nativeWindow(loaded);
  const partTokens = Math.min(PART_TOKENS[o.request.length], o.maxTokens);
  const finalTokens = o.maxTokens;
  const aroundSection = Math.max(after(sectionInstruction(o.request)) + partTokens, after(wholeInstruction(o.request)) + finalTokens);
  const aroundCombine = Math.max(after(combineInstruction(o.request)) + partTokens, after(finalInstruction(o.request)) + finalTokens);
  const sectionTokens = Math.min(window - prefix - aroundSection, o.sectionTokens ?? Infinity);
  const combineTokens = window - prefix - aroundCombine;

  // Sections at least 4× their summaries, and room to combine at least 3 summaries: below that,
  // the steps would not condense the document.
  let problem: string | null = null;
  if (sectionTokens < 4 * partTokens || combineTokens < 3 * partTokens) {
    problem =
      `with its prompts and summaries of up to ${fmt(partTokens)} tokens, a section would hold ` +
      `${fmt(Math.max(0, sectionTokens))} tokens and a combine step ${fmt(Math.max(0, combineTokens))}`;
  }
  return { window, sectionTokens, combineTokens, partTokens, finalTokens, problem };
}

export interface StepResult {
  kind: 'section' | 'combine';
  label: string;
  summary: string;
  finishReason: string;
  promptTokens: number;
  generatedTokens: number;
  seconds: number;
}

export interface StepCallbacks {
  /** Before step `index` (0-based) of `total` starts. */
  onStepStart?: (step: PlanNode, index: number, total: number) => void;
  /** After it finished. */
  onStepDone?: (result: StepResult, index: number, total: number) => void;
  /** Text of the final summary as it is generated. */
  onToken?: (text: string) => void;
}

export interface HierarchicalResult {
  /** The final step's answer (the summary). */
  answer: AnswerResult;
  steps: StepResult[];
  /** Prompt tokens read by all steps together. */
  promptTokens: number;
  seconds: number;
}

export interface StepRunOptions extends SamplingOptions {
  stopStrings?: string[];
  signal?: AbortSignal;
  memoryBudgetBytes?: number;
}

/** Runs every step of `plan`; the last one's text is the summary. */
export async function runHierarchical(
  loaded: LoadedModel,
  plan: SummaryPlan,
  limits: SummaryLimits,
  o: HierarchicalOptions,
  run: StepRunOptions,
  callbacks: StepCallbacks = {},
): Promise<HierarchicalResult> {
  const t0 = performance.now();
  const order = stepsInOrder(plan.root);
  const summaries = new Map<PlanNode, string>();
  const steps: StepResult[] = [];
  let final: AnswerResult | undefined;
  let promptTokens = 0;

  for (const [index, step] of order.entries()) {
    run.signal?.throwIfAborted();
    callbacks.onStepStart?.(step, index, order.length);
    const isFinal = step === plan.root;
    const text = step.kind === 'section' ? step.section.text : combineText(step.children.map((c) => ({ label: c.label, summary: summaries.get(c)! })));
    const instruction =
      step.kind === 'section'
        ? isFinal ? wholeInstruction(o.request) : sectionInstruction(o.request)
        : isFinal ? finalInstruction(o.request) : combineInstruction(o.request);
    const answer = await summarizeText(loaded, text, instruction, {
      ...run,
      system: o.system,
      format: o.format,
      window: limits.window,
      maxNewTokens: isFinal ? limits.finalTokens : limits.partTokens,
      onToken: isFinal ? callbacks.onToken : undefined,
    });
    summaries.set(step, isFinal ? answer.answer : await clipToTokens(answer.answer, limits.partTokens, (t) => countTokens(loaded, t)));
    promptTokens += answer.promptTokens;
    const result: StepResult = {
      kind: step.kind,
      label: step.label,
      summary: answer.answer,
      finishReason: answer.reason,
      promptTokens: answer.promptTokens,
      generatedTokens: answer.generatedTokens,
      seconds: answer.seconds,
    };
    steps.push(result);
    callbacks.onStepDone?.(result, index, order.length);
    if (isFinal) final = answer;
  }
  return { answer: final!, steps, promptTokens, seconds: (performance.now() - t0) / 1000 };
}

/** Tokens of document text (special-token strings count as the characters they are). */
export async function countTokens(loaded: LoadedModel, text: string): Promise<number> {
  return (await loaded.tokenizer.encodeSegments([{ text, source: { path: '' } }], { workers: 0 })).ids.length;
}

/**
 * `text` cut to at most `cap` tokens. A summary is generated within its cap, but its decoded text
 * can encode to more tokens (a broken character becomes U+FFFD, three bytes); combine steps are
 * planned for summaries at the cap, so the cap must hold for the text they are given.
 */
export async function clipToTokens(text: string, cap: number, count: (text: string) => Promise<number>): Promise<string> {
  if ((await count(text)) <= cap) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if ((await count(text.slice(0, mid))) <= cap) lo = mid;
    else hi = mid - 1;
  }
  return text.slice(0, lo);
}

/**
 * One step: [system ; text] read into a fresh full-attention session, then the instruction and the
 * answer. promptTokens in the result counts the whole prompt (prefix, text and instruction).
 */
async function summarizeText(
  loaded: LoadedModel,
  text: string,
  instruction: string,
  o: StepRunOptions & { system?: string; format?: PromptFormat; window: number; maxNewTokens: number; onToken?: (text: string) => void },
): Promise<AnswerResult> {
  const conversation = new Conversation(loaded.tokenizer, o.system, o.format);
  const prefix = conversation.documentPrefix();
  const { ids } = await loaded.tokenizer.encodeSegments([{ text, source: { path: '' } }], { workers: 0 });
  const questionTokens = conversation.firstQuestion(instruction).length;
  // A combine is planned for summaries at their token cap; text decoded and encoded again can come
  // out a little longer, so the reserve gives way before the prompt does.
  const room = o.window - prefix.length - ids.length - questionTokens;
  if (room < 1) {
    throw new CtxError('doesNotFit', `a summary step needs ${fmt(prefix.length + ids.length + questionTokens)} tokens; the model's window holds ${fmt(o.window)}`);
  }
  const maxNewTokens = Math.min(o.maxNewTokens, room);
  const plan = planDocument(loaded, prefix.length, ids.length, {
    strategy: { strategy: 'full' },
    maxNewTokens,
    questionTokens,
    memoryBudgetBytes: o.memoryBudgetBytes,
  });
  const prompt = new Int32Array(prefix.length + ids.length);
  prompt.set(prefix);
  prompt.set(ids, prefix.length);
  const { session } = await readDocument(loaded, plan, prompt, { signal: o.signal });
  try {
    const answer = await askQuestion(loaded, session, conversation, instruction, { ...o, maxNewTokens, signal: o.signal, onText: o.onToken });
    return { ...answer, promptTokens: prompt.length + answer.promptTokens };
  } finally {
    session.dispose();
  }
}
