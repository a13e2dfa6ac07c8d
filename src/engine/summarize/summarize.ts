// A summary of a whole document, as the library offers it (ctx summarize is its CLI client):
//
//   inputs → markers → model → tokens → choose the mode (mode.ts) ─┬─ one-pass: plan → read → summary
//                                                                  └─ hierarchical: plan sections → steps (run.ts)
//
// The mode decision and its reason are reported twice: a "summary mode" note with the plan, and a
// `summary` event at the end ({mode, reason, …}; hierarchical adds its sections and steps).
// Hierarchical progress comes as `section` events. With cite, the summary's citations are checked as
// an answer's are (citations/source-marking.ts).

import { CtxError } from '../../errors.js';
import { AnswerStream } from '../answer-stream.js';
import type { Answer } from '../citations/source-marking.js';
import { Conversation } from '../conversation.js';
import { prepareDocument, type DocumentOptions, type PreparedDocument } from '../open.js';
import { formatNote } from '../prompt-format.js';
import { askQuestion, emptyAnswerWarning, type AnswerResult } from '../reader.js';
import { samplingOf, type SamplingOptions } from '../sampler.js';
import { chooseRatio } from '../strategies/beacon-ratio.js';
import { beaconPositions } from '../strategies/index.js';
import { chooseMode, type ModeDecision, type ModeRequest } from './mode.js';
import { finalInstruction, wholeInstruction, type SummaryLength, type SummaryRequest } from './prompts.js';
import { countTokens, nativeWindow, runHierarchical, summaryLimits, type HierarchicalOptions, type SummaryLimits } from './run.js';
import { planSummary } from './sections.js';

export interface SummaryOptions extends DocumentOptions, SamplingOptions {
  /** How long a summary. Default 'medium'. */
  length?: SummaryLength;
  /** What the summary should concentrate on. */
  focus?: string;
  /** A custom instruction instead of the built-in one. */
  instruction?: string;
  /** one-pass, hierarchical, or auto (chosen from the length and the model; the default). */
  mode?: ModeRequest;
  /** Hierarchical: largest section in tokens, below what the window allows. */
  sectionTokens?: number;
  stopStrings?: string[];
}

/** Summarizes the inputs; the reply streams the summary and resolves to it. Closes what it opened. */
export function summarizeDocument(o: SummaryOptions): AnswerStream<Answer> {
  return new AnswerStream((onText) => summarize(o, onText));
}

async function summarize(o: SummaryOptions, onText: (text: string) => void): Promise<Answer> {
  const prepared = await prepareDocument(o);
  const { loaded, sources, emit } = prepared;
  try {
    const request: SummaryRequest = { length: o.length ?? 'medium', focus: o.focus, instruction: o.instruction, cite: sources.kinds };
    const maxTokens = o.maxTokens ?? 512;
    const hierarchical: HierarchicalOptions = { request, system: o.system, format: prepared.format, maxTokens, sectionTokens: o.sectionTokens };
    const limits = summaryLimits(loaded, hierarchical);
    const decision = decideMode(prepared, request, limits);
    const text = (t: string) => {
      emit({ type: 'token', text: t });
      onText(t);
    };
    let result: AnswerResult;
    if (decision.mode === 'one-pass') {
      result = await onePass(prepared, request, decision, text);
      emit({ type: 'summary', mode: decision.mode, reason: decision.reason });
    } else {
      result = await inSections(prepared, hierarchical, limits, decision, text);
    }
    const summary = sources.finishAnswer(result, emit);
    const empty = emptyAnswerWarning(result, prepared.format);
    if (empty) emit({ type: 'warning', message: empty });
    return summary;
  } finally {
    await prepared.close();
  }
}

/** one-pass or hierarchical, and why: the beacon ratio this length would get decides whether beacon condenses it. */
function decideMode(prepared: PreparedDocument, request: SummaryRequest, limits: SummaryLimits): ModeDecision {
  const { loaded, tokens, options: o } = prepared;
  const conversation = new Conversation(loaded.tokenizer, o.system, prepared.format);
  const promptTokens = conversation.documentPrefix().length + tokens.count + conversation.firstQuestion(wholeInstruction(request)).length;
  const c = loaded.model.config;
  return chooseMode({
    requested: (o as SummaryOptions).mode ?? 'auto',
    strategy: o.strategy?.strategy ?? 'auto',
    promptTokens,
    answerTokens: o.maxTokens ?? 512,
    window: nativeWindow(loaded),
    beacon: c.beacon ? chooseRatio(c.beacon, beaconPositions(c), promptTokens, o.strategy?.beaconRatio) : null,
    hierarchicalBlocked: limits.problem,
  });
}

/** The whole document into one session with the strategy the options choose (or the cache), then the summary. */
async function onePass(prepared: PreparedDocument, request: SummaryRequest, decision: ModeDecision, onText: (text: string) => void): Promise<AnswerResult> {
  const o = prepared.options as SummaryOptions;
  const instruction = wholeInstruction(request);
  const { session, conversation, saving } = await prepared.readSession(instruction, [`summary mode: one-pass (${decision.reason})`]);
  try {
    prepared.emit({ type: 'question', text: instruction });
    const text = (t: string) => {
      onText(t);
      void saving?.start(); // the first token is out: the cache write no longer delays it
    };
    return await askQuestion(prepared.loaded, session, conversation, instruction, { ...samplingOf(o), stopStrings: o.stopStrings, maxNewTokens: o.maxTokens ?? 512, signal: o.signal, onText: text });
  } finally {
    session.dispose();
    await saving?.start(); // the cache entry, written while the summary was generated
  }
}

/** Sections summarised one by one within the window, then combined; `section` events report progress. */
async function inSections(
  prepared: PreparedDocument,
  hierarchical: HierarchicalOptions,
  limits: SummaryLimits,
  decision: ModeDecision,
  onText: (text: string) => void,
): Promise<AnswerResult> {
  const { loaded, tokens, emit } = prepared;
  const o = prepared.options as SummaryOptions;
  const strategy = o.strategy?.strategy ?? 'auto';
  if (strategy !== 'auto') {
    throw new CtxError('usage', `--strategy ${strategy} applies to one-pass summaries; the hierarchical mode reads each section with full attention`);
  }
  if (limits.sectionTokens < 1 || limits.combineTokens < 2 * limits.partTokens) {
    throw new CtxError('doesNotFit', `the model's window of ${limits.window.toLocaleString('en-US')} tokens is too small for a hierarchical summary (${limits.problem})`);
  }
  const plan = await planSummary(await prepared.document(), limits, (text) => countTokens(loaded, text));
  emit({
    type: 'plan',
    strategy: `hierarchical: ${plural(plan.sections.length, 'section')} + ${plural(plan.combines, 'combine step')}, each read with full attention (window ${limits.window.toLocaleString('en-US')})`,
    documentTokens: tokens.count,
    kvRows: limits.window,
    kvBytes: limits.window * loaded.backend.kvBytesPerRow,
    nativeWindow: limits.window,
    notes: [`summary mode: hierarchical (${decision.reason})`, ...formatNote(prepared.format)],
  });

  // A `section` event as each step starts: `done` steps of `total` are finished, `label` is the one
  // now running. The final step's summary then streams as tokens.
  const t0 = performance.now();
  const result = await runHierarchical(loaded, plan, limits, hierarchical, { ...samplingOf(o), stopStrings: o.stopStrings, signal: o.signal, memoryBudgetBytes: o.maxKvMemory }, {
    onStepStart: (step, index, total) => {
      emit({ type: 'section', done: index, total, label: step.label });
      if (index === total - 1) {
        // Every section has been read: the document, counted as the plan counts it (the steps'
        // prompts add instructions and earlier summaries, which the summary event reports).
        emit({ type: 'read', tokens: tokens.count, seconds: (performance.now() - t0) / 1000, cached: false });
        emit({ type: 'question', text: step.kind === 'section' ? wholeInstruction(hierarchical.request) : finalInstruction(hierarchical.request) });
      }
    },
    onToken: onText,
  });
  emit({
    type: 'summary',
    mode: decision.mode,
    reason: decision.reason,
    sections: plan.sections.length,
    combines: plan.combines,
    window: limits.window,
    sectionTokens: limits.sectionTokens,
    promptTokens: result.promptTokens,
    seconds: result.seconds,
    steps: result.steps,
  });
  return result.answer;
}

function plural(n: number, what: string): string {
  return `${n} ${what}${n === 1 ? '' : 's'}`;
}

