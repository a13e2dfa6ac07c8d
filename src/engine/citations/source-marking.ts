// The citation side of reading a document: marks the document as it is read (or leaves it alone
// when citations are off), knows what to tell the model, and checks each finished answer.
//
// The document is marked as it streams through the reader (markers.ts), from what its first reading
// taught (survey.ts: a few numbers per source), so citations hold no text of the document.
//
//   - the streamed text is the model's own, unchanged;
//   - a `citations` event lists every citation with its verdict, and a warning names the invalid ones;
//   - the `answer` event (and the answer a caller gets back) carries the text with invalid citations
//     marked "[p. 999?]".

import type { Document, Segment, SourceInfo } from '../../input/document.js';
import type { CheckedCitation, EventSink } from '../events.js';
import type { TextTokenizer } from '../../model/tokenizer.js';
import type { AnswerResult } from '../reader.js';
import { citeInstruction, SourceMarker, type MarkerKinds } from './markers.js';
import { findCitations, markInvalid } from './resolve.js';
import { SourceSurvey, type SourceIndex } from './survey.js';

/** An answer as a caller gets it: invalid citations marked, and the citations checked (when on). */
export interface Answer extends AnswerResult {
  citations?: CheckedCitation[];
}

/** Markers encoded together for their cost, at most this many at a time (about 50 KB of text). */
const COST_BATCH = 4096;

export class SourceMarking {
  private readonly survey = new SourceSurvey();
  private index: SourceIndex | null = null;
  private markerKinds: MarkerKinds | null = null;
  /** Markers in the document and their tokens, once one marking pass has been read to its end. */
  private counted: { count: number; tokens: number | null } | null = null;

  /** `offReason`: why citations asked for are off (a plan note), or null. */
  constructor(
    readonly enabled: boolean,
    private readonly offReason: string | null = null,
  ) {}

  /** Plan notes: why citations are off when they were asked for. */
  notes(): string[] {
    return this.offReason ? [this.offReason] : [];
  }

  /** Takes in a segment of the document's first reading (before markers; nothing is kept of its text). */
  see(seg: Segment): void {
    if (this.enabled) this.survey.add(seg);
  }

  /** The first reading is complete: `sources` are the inputs as read. */
  surveyed(sources: SourceInfo[]): void {
    if (!this.enabled) return;
    this.index = this.survey.index(sources);
    this.markerKinds = this.survey.kinds();
  }

  /**
   * The segments as the model reads them, with markers as they stream past (unchanged when citations
   * are off). The first pass read to its end counts the markers and, given a tokenizer, measures
   * their tokens (encoded together, COST_BATCH at a time, on this thread).
   */
  async *marked(segments: AsyncIterable<Segment> | Iterable<Segment>, tokenizer?: TextTokenizer): AsyncGenerator<Segment> {
    if (!this.enabled) {
      yield* segments;
      return;
    }
    if (!this.markerKinds) throw new Error('source markers before the first reading was surveyed');
    const measure = this.counted === null;
    const cost = new MarkerCost(measure ? tokenizer : undefined);
    const marker = new SourceMarker(this.markerKinds, (m) => cost.add(m));
    for await (const seg of segments) {
      yield marker.mark(seg);
      if (cost.pending >= COST_BATCH) await cost.flush();
    }
    if (measure) this.counted = { count: cost.count, tokens: await cost.total() };
  }

  /** A whole document in memory with its markers (unchanged when citations are off): surveys, then marks it. */
  mark(doc: Document): Document {
    if (!this.enabled) return doc;
    for (const seg of doc.segments) this.see(seg);
    this.surveyed(doc.sources);
    let count = 0;
    const marker = new SourceMarker(this.markerKinds!, () => count++);
    const segments = doc.segments.map((s) => marker.mark(s));
    this.counted = { count, tokens: null };
    return { ...doc, segments };
  }

  /** The markers' kinds, or null when citations are off. */
  get kinds(): MarkerKinds | null {
    return this.markerKinds;
  }

  /** " Cite sources as [p. N]…" for a question, or '' without markers. */
  instruction(): string {
    return this.markerKinds ? citeInstruction(this.markerKinds) : '';
  }

  /** How many markers the document got and what they cost in tokens (null when unmeasured); null before a marking pass ended. */
  get cost(): { count: number; tokens: number | null } | null {
    return this.counted;
  }

  /** Reports what the markers cost: a `markers` event (inspect prints the same numbers). */
  report(emit: EventSink): void {
    if (this.counted?.tokens != null) emit({ type: 'markers', count: this.counted.count, tokens: this.counted.tokens });
  }

  /**
   * Emits the answer with invalid citations marked, then the `citations` event and, when some are
   * invalid, one warning that lists them; returns the answer as emitted.
   */
  finishAnswer(result: AnswerResult, emit: EventSink): Answer {
    if (!this.index) {
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

/**
 * The token cost of a stream of markers as if encoded together, joined by spaces, without holding
 * them all: each batch after the first is encoded with the space that joins it to the one before.
 */
class MarkerCost {
  count = 0;
  private batch: string[] = [];
  private tokens = 0;

  constructor(private readonly tokenizer: TextTokenizer | undefined) {}

  get pending(): number {
    return this.batch.length;
  }

  add(marker: string): void {
    this.count++;
    if (this.tokenizer) this.batch.push(marker);
  }

  async flush(): Promise<void> {
    if (!this.tokenizer || this.batch.length === 0) return;
    const text = `${this.count > this.batch.length ? ' ' : ''}${this.batch.join(' ')}`;
    this.batch = [];
    const { ids } = await this.tokenizer.encodeSegments([{ text, source: { path: '' } }], { workers: 0 });
    this.tokens += ids.length;
  }

  /** The tokens of every marker added; null without a tokenizer. */
  async total(): Promise<number | null> {
    await this.flush();
    return this.tokenizer ? this.tokens : null;
  }
}
