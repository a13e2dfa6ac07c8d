// `ctx summarize <inputs…>`: a summary of all of the inputs, in one of two modes (engine/summarize/mode.ts):
//
//   one-pass      the whole document read into one session (full, beacon or select), then the
//                 summary generated from it;
//   hierarchical  sections that fit the model's window summarised one by one, then combined along the
//                 document's structure (files → folders → the whole; page ranges → the whole).
//
// --mode auto (the default) picks one and says why: a "summary mode" note with the plan, and
// "summary": {mode, reason, …} in --json. Hierarchical progress comes as `section` events. Citations
// work as in `ctx ask` (see ask.ts): markers in the document, checked citations in the summary.
//
//   inputs → markers → model → tokenize → choose the mode ─┬─ one-pass: plan → read → summary
//                                                          └─ hierarchical: plan sections → run steps

import { Command, InvalidArgumentError, Option } from 'commander';
import { Conversation } from '../engine/conversation.js';
import { askQuestion, type Engine, type TokenizedDocument } from '../engine/reader.js';
import { beaconPositions } from '../engine/strategies/index.js';
import { chooseRatio } from '../engine/strategies/beacon-ratio.js';
import { chooseMode, type ModeDecision, type ModeRequest } from '../engine/summarize/mode.js';
import { finalInstruction, wholeInstruction, type SummaryLength, type SummaryRequest } from '../engine/summarize/prompts.js';
import { countTokens, nativeWindow, runHierarchical, summaryLimits, type HierarchicalOptions, type SummaryLimits } from '../engine/summarize/run.js';
import { planSummary } from '../engine/summarize/sections.js';
import { CtxError } from '../errors.js';
import type { Document } from '../input/document.js';
import type { Renderer } from '../ui/events.js';
import { pickRenderer } from '../ui/pick.js';
import { citeOption, SourceMarking, type AskOptions } from './ask.js';
import { prepareDocument, readPrepared, type PreparedDocument } from './document-run.js';
import { addEngineOptions, samplingOptions } from './engine-options.js';
import { currentRun, documentInputs, type DocumentInputs } from './io.js';

export type { SummaryLength } from '../engine/summarize/prompts.js';

export interface SummarizeOptions extends AskOptions {
  length: SummaryLength;
  focus?: string;
  instruction?: string;
  mode: ModeRequest;
  /** Largest section in tokens (hierarchical), below what the window allows. */
  sectionTokens?: number;
}

const positiveInt = (text: string) => {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError('expected an integer ≥ 1');
  return v;
};

export function summarizeCommand(): Command {
  const cmd = new Command('summarize')
    .description('read files, folders, a PDF or piped text, and summarize all of it')
    .argument('[inputs...]', 'files, folders, globs, or - for stdin (piped input is read too)')
    .addOption(new Option('--length <size>', 'how long a summary').choices(['short', 'medium', 'long']).default('medium'))
    .addOption(new Option('--focus <topic>', 'what the summary should concentrate on'))
    .addOption(new Option('--instruction <text>', 'a custom instruction instead of the built-in one'))
    .addOption(
      new Option('--mode <mode>', 'one-pass: read it all, then summarize; hierarchical: summarize sections, then combine; auto: choose')
        .choices(['auto', 'one-pass', 'hierarchical'])
        .default('auto'),
    )
    .addOption(new Option('--section-tokens <n>', 'hierarchical: largest section in tokens (default: what the window allows)').argParser(positiveInt))
    .addOption(citeOption());
  return addEngineOptions(cmd, { maxTokens: 768 }).action(async (inputs: string[], _o: unknown, c: Command) => {
    const run = currentRun();
    const o = c.optsWithGlobals<SummarizeOptions>();
    await summarize(documentInputs(inputs, run), o, pickRenderer(o, run), run.signal);
  });
}

export async function summarize(inputs: DocumentInputs, o: SummarizeOptions, r: Renderer, signal: AbortSignal): Promise<void> {
  const sources = new SourceMarking(o.cite);
  const prepared = await prepareDocument(inputs.specs, o, r, signal, { transform: (doc) => sources.mark(doc), implicitStdin: inputs.implicitStdin });
  const { engine, doc, tokenized } = prepared;
  try {
    await sources.report(engine, r);
    const request: SummaryRequest = { length: o.length, focus: o.focus, instruction: o.instruction, cite: sources.kinds };
    const hierarchical: HierarchicalOptions = { request, system: o.system, maxTokens: o.maxTokens, sectionTokens: o.sectionTokens };
    const limits = summaryLimits(engine, hierarchical);
    const decision = decideMode(engine, tokenized, o, request, limits);

    const answer =
      decision.mode === 'one-pass'
        ? await onePass(prepared, o, request, decision, r, signal)
        : await inSections(engine, doc, tokenized, o, hierarchical, limits, decision, r, signal);
    if (decision.mode === 'one-pass') r.event({ type: 'summary', mode: decision.mode, reason: decision.reason });
    sources.finishAnswer(answer, r);
    r.finish();
  } finally {
    await engine.backend.dispose();
  }
}

function decideMode(engine: Engine, tokenized: TokenizedDocument, o: SummarizeOptions, request: SummaryRequest, limits: SummaryLimits): ModeDecision {
  const conversation = new Conversation(engine.tokenizer, o.system);
  const promptTokens = conversation.documentPrefix().length + tokenized.ids.length + conversation.firstQuestion(wholeInstruction(request)).length;
  const c = engine.model.config;
  return chooseMode({
    requested: o.mode,
    strategy: o.strategy,
    promptTokens,
    answerTokens: o.maxTokens,
    window: nativeWindow(engine),
    beacon: c.beacon ? chooseRatio(c.beacon, beaconPositions(c), promptTokens, o.beaconRatio) : null,
    hierarchicalBlocked: limits.problem,
  });
}

/** The whole document into one session with the strategy the options choose (or the cache), then the summary. */
async function onePass(prepared: PreparedDocument, o: SummarizeOptions, request: SummaryRequest, decision: ModeDecision, r: Renderer, signal: AbortSignal) {
  const instruction = wholeInstruction(request);
  const { engine, session, conversation } = await readPrepared(prepared, o, r, signal, (c) => c.firstQuestion(instruction).length, {
    notes: [`summary mode: one-pass (${decision.reason})`],
  });
  try {
    r.event({ type: 'question', text: instruction });
    const answering = askQuestion(engine, session, conversation, instruction, { ...samplingOptions(o), maxNewTokens: o.maxTokens, signal });
    let step = await answering.next();
    while (!step.done) {
      r.event({ type: 'token', text: step.value });
      step = await answering.next();
    }
    return step.value;
  } finally {
    session.dispose();
  }
}

/** Sections summarised one by one within the window, then combined; `section` events report progress. */
async function inSections(
  engine: Engine,
  doc: Document,
  tokenized: TokenizedDocument,
  o: SummarizeOptions,
  hierarchical: HierarchicalOptions,
  limits: SummaryLimits,
  decision: ModeDecision,
  r: Renderer,
  signal: AbortSignal,
) {
  if (o.strategy !== 'auto') {
    throw new CtxError('usage', `--strategy ${o.strategy} applies to one-pass summaries; the hierarchical mode reads each section with full attention`);
  }
  if (limits.sectionTokens < 1 || limits.combineTokens < 2 * limits.partTokens) {
    throw new CtxError('doesNotFit', `the model's window of ${limits.window.toLocaleString('en-US')} tokens is too small for a hierarchical summary (${limits.problem})`);
  }
  const plan = await planSummary(doc, limits, (text) => countTokens(engine, text));
  const kvBytes = limits.window * engine.backend.kvBytesPerRow;
  r.event({
    type: 'plan',
    strategy: `hierarchical: ${plan.sections.length} section${plan.sections.length === 1 ? '' : 's'} + ${plan.combines} combine step${plan.combines === 1 ? '' : 's'}, each read with full attention (window ${limits.window.toLocaleString('en-US')})`,
    documentTokens: tokenized.ids.length,
    kvRows: limits.window,
    kvBytes,
    nativeWindow: limits.window,
    notes: [`summary mode: hierarchical (${decision.reason})`],
  });

  // A `section` event as each step starts: `done` steps of `total` are finished, `label` is the one
  // now running. The final step's summary then streams as tokens.
  const t0 = performance.now();
  let readTokens = 0;
  const result = await runHierarchical(engine, plan, limits, hierarchical, { ...samplingOptions(o), signal, memoryBudgetBytes: o.maxKvMemory }, {
    onStepStart: (step, index, total) => {
      r.event({ type: 'section', done: index, total, label: step.label });
      if (index === total - 1) {
        r.event({ type: 'read', tokens: readTokens, seconds: (performance.now() - t0) / 1000, cached: false });
        r.event({ type: 'question', text: step.kind === 'section' ? wholeInstruction(hierarchical.request) : finalInstruction(hierarchical.request) });
      }
    },
    onStepDone: (step) => {
      readTokens += step.promptTokens;
    },
    onToken: (text) => r.event({ type: 'token', text }),
  });
  r.event({
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
