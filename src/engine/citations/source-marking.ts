// The citation side of reading a document: marks the document as it is read (or leaves it alone
// when citations are off), knows what to tell the model, and checks each finished answer.
//
//   - the streamed text is the model's own, unchanged;
//   - a `citations` event lists every citation with its verdict, and a warning names the invalid ones;
//   - the `answer` event (and the answer a caller gets back) carries the text with invalid citations
//     marked "[p. 999?]".

import type { Document } from '../../input/document.js';
import type { CheckedCitation, EventSink } from '../events.js';
import type { TextTokenizer } from '../../model/tokenizer.js';
import type { LoadedModel } from '../loaded-model.js';
import type { AnswerResult } from '../reader.js';
import { addSourceMarkers, citeInstruction, type MarkedDocument } from './markers.js';
import { findCitations, indexSources, markInvalid, type SourceIndex } from './resolve.js';

/** An answer as a caller gets it: invalid citations marked, and the citations checked (when on). */
export interface Answer extends AnswerResult {
  citations?: CheckedCitation[];
}

export class SourceMarking {
  private index: SourceIndex | null = null;
  private marked: MarkedDocument | null = null;

  /** `offReason`: why citations asked for are off (a plan note), or null. */
  constructor(
    readonly enabled: boolean,
    private readonly offReason: string | null = null,
  ) {}

  /** Plan notes: why citations are off when they were asked for. */
  notes(): string[] {
    return this.offReason ? [this.offReason] : [];
  }

  /** The document with source markers (unchanged when citations are off). */
  mark(doc: Document): Document {
    this.index = indexSources(doc);
    if (!this.enabled) return doc;
    this.marked = addSourceMarkers(doc);
    return this.marked.doc;
  }

  /** How many markers the document got (0 when citations are off). */
  get markerCount(): number {
    return this.marked?.markers.length ?? 0;
  }

  /** The markers' kinds, or null when there are none. */
  get kinds(): MarkedDocument['kinds'] | null {
    return this.marked?.kinds ?? null;
  }

  /** " Cite sources as [p. N]…" for a question, or '' without markers. */
  instruction(): string {
    return this.marked ? citeInstruction(this.marked.kinds) : '';
  }

  /** How many markers there are and what they cost in tokens (encoded together), or null without markers. */
  async cost(tokenizer: TextTokenizer): Promise<{ count: number; tokens: number } | null> {
    if (!this.marked) return null;
    const { markers } = this.marked;
    const { ids } = await tokenizer.encodeSegments([{ text: markers.join(' '), source: { path: '' } }], { workers: 0 });
    return { count: markers.length, tokens: ids.length };
  }

  /** Measures what the markers cost: a `markers` event (inspect prints the same numbers). */
  async report(loaded: Pick<LoadedModel, 'tokenizer'>, emit: EventSink): Promise<void> {
    const cost = await this.cost(loaded.tokenizer);
    if (cost) emit({ type: 'markers', ...cost });
  }

  /**
   * Emits the answer with invalid citations marked, then the `citations` event and, when some are
   * invalid, one warning that lists them; returns the answer as emitted.
   */
  finishAnswer(result: AnswerResult, emit: EventSink): Answer {
    if (!this.marked || !this.index) {
      emit({ type: 'answer', ...result });
      return result;
    }
    const found = findCitations(result.answer, this.index);
    const answer = { ...result, answer: markInvalid(result.answer, found) };
    emit({ type: 'answer', ...answer });
    const citations = found.map(({ start: _s, end: _e, ...c }) => c);
    emit({ type: 'citations', citations });
    const invalid = found.filter((c) => !c.valid);
    if (invalid.length > 0) {
      const list = invalid.map((c) => `[${c.text}] (${c.reason})`).join('; ');
      emit({ type: 'warning', message: `${invalid.length} of ${found.length} citations do not match the inputs: ${list}` });
    }
    return { ...answer, citations };
  }
}
