// `ctx ask <inputs…> "<question>"`: read the document, answer one question, stream the answer.
//
// Citations (on unless --no-cite): the document gets source markers ([p. 12], [line 40],
// [src/x.ts:40]; engine/citations/markers.ts), the question asks for citations in that form, and
// the answer's citations are checked against the inputs once it is complete:
//   - the streamed text is the model's own, unchanged;
//   - a `citations` event lists every citation with its verdict, and a warning names the invalid ones;
//   - the `answer` event (and so --json's "answer") carries the text with invalid citations marked
//     "[p. 999?]"; --json also has "citations" (resolved to path, page or line) and "markers".

import { Command, Option } from 'commander';
import { addSourceMarkers, citeInstruction, type MarkedDocument } from '../engine/citations/markers.js';
import { findCitations, indexSources, markInvalid, type SourceIndex } from '../engine/citations/resolve.js';
import { askQuestion, type AnswerResult, type Engine } from '../engine/reader.js';
import type { Document } from '../input/document.js';
import type { Renderer } from '../ui/events.js';
import { pickRenderer } from '../ui/pick.js';
import { openDocument } from './document-run.js';
import { addEngineOptions, samplingOptions, type EngineCliOptions } from './engine-options.js';
import { currentRun, inputsAndQuestion, type DocumentInputs } from './io.js';

export interface AskOptions extends EngineCliOptions {
  /** Source markers in the document and checked citations in the answer (--no-cite turns it off). */
  cite: boolean;
}

export function citeOption(): Option {
  return new Option('--no-cite', 'no source markers in the document and no citation checks');
}

export function askCommand(): Command {
  const cmd = new Command('ask')
    .description('read files, folders, a PDF or piped text, and answer a question about them')
    .argument('<inputs-and-question...>', 'inputs (files, folders, globs, - for stdin), then the question last')
    .addOption(citeOption());
  return addEngineOptions(cmd, { maxTokens: 512 }).action(async (args: string[], _o: unknown, c: Command) => {
    const run = currentRun();
    const o = c.optsWithGlobals<AskOptions>();
    const { question, ...inputs } = inputsAndQuestion(args, run);
    await ask(inputs, question, o, pickRenderer(o, run), run.signal);
  });
}

export async function ask(inputs: DocumentInputs, question: string, o: AskOptions, r: Renderer, signal: AbortSignal): Promise<void> {
  const sources = new SourceMarking(o.cite);
  const prompted = () => `${question}${sources.instruction()}`;
  const opened = await openDocument(inputs.specs, o, r, signal, (c) => c.firstQuestion(prompted()).length, {
    transform: (doc) => sources.mark(doc),
    implicitStdin: inputs.implicitStdin,
  });
  const { engine, session, conversation } = opened;
  await sources.report(engine, r);
  r.event({ type: 'question', text: question });
  const answering = askQuestion(engine, session, conversation, prompted(), { ...samplingOptions(o), maxNewTokens: o.maxTokens, signal });
  let step = await answering.next();
  while (!step.done) {
    r.event({ type: 'token', text: step.value });
    step = await answering.next();
  }
  sources.finishAnswer(step.value, r);
  r.finish();
  session.dispose();
  await engine.backend.dispose();
}

/**
 * The citation side of a document command: marks the document as it is read (or leaves it alone
 * with --no-cite), knows what to tell the model, and checks the final answer.
 */
export class SourceMarking {
  private index: SourceIndex | null = null;
  private marked: MarkedDocument | null = null;

  constructor(readonly enabled: boolean) {}

  /** The document with source markers (a hooks.transform for openDocument). */
  mark(doc: Document): Document {
    this.index = indexSources(doc);
    if (!this.enabled) return doc;
    this.marked = addSourceMarkers(doc);
    return this.marked.doc;
  }

  /** The markers' kinds, or null when there are none. */
  get kinds(): MarkedDocument['kinds'] | null {
    return this.marked?.kinds ?? null;
  }

  /** " Cite sources as [p. N]…" for a question, or '' without markers. */
  instruction(): string {
    return this.marked ? citeInstruction(this.marked.kinds) : '';
  }

  /** Measures what the markers cost (their tokens, encoded together) and adds it to --json. */
  async report(engine: Engine, r: Renderer): Promise<void> {
    if (!this.marked) return;
    const { markers } = this.marked;
    const { ids } = await engine.tokenizer.encodeSegments([{ text: markers.join(' '), source: { path: '' } }], { workers: 0 });
    r.event({ type: 'markers', count: markers.length, tokens: ids.length });
  }

  /**
   * Emits the answer with invalid citations marked, then the `citations` event and, when some are
   * invalid, one warning that lists them.
   */
  finishAnswer(result: AnswerResult, r: Renderer): void {
    if (!this.marked || !this.index) {
      r.event({ type: 'answer', ...result });
      return;
    }
    const found = findCitations(result.answer, this.index);
    r.event({ type: 'answer', ...result, answer: markInvalid(result.answer, found) });
    const citations = found.map(({ start: _s, end: _e, ...c }) => c);
    r.event({ type: 'citations', citations });
    const invalid = found.filter((c) => !c.valid);
    if (invalid.length > 0) {
      const list = invalid.map((c) => `[${c.text}] (${c.reason})`).join('; ');
      r.event({ type: 'warning', message: `${invalid.length} of ${found.length} citations do not match the inputs: ${list}` });
    }
  }
}
