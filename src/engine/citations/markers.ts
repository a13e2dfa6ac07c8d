// Source markers: short bracketed labels written into the document before it is tokenized, so that
// a model can say where something comes from, and ctx can check what it says (resolve.ts).
//
//   PDF pages   "[p. 12] " at the start of each page's text; "[report.pdf p. 12] " when more than
//               one PDF is read, so that the marker says which file the page belongs to.
//   text lines  "[line 40] " when one text source is read; "[src/x.ts:40] " when several are (a
//               repository), at the start of line 1 of each file and of every line whose number is a
//               multiple of the interval (1, 25, 50, … for one file; 1, 50, 100, … for several).
//
// Markers are prefixes: no line is added or removed, so every SourceRef stays true and the token →
// segment map of the tokenizer still points at the right place. Piped text is named "stdin".
//
// The intervals keep the cost near 1–3% of the document's tokens; bench/summarize/marker-overhead.ts
// measures it on the Qwen tokenizer (a marker naming a file costs 10–15 tokens, "[line 40]" about 4,
// "[p. 12]" about 5, so the interval between named markers is longer).

import type { Document, Segment } from '../../input/document.js';
import type { TextTokenizer } from '../../model/tokenizer.js';
import { SourceSurvey } from './survey.js';

/** Lines between two "[line N]" markers (one text source). Fewer lines: finer citations, more tokens. */
export const LINE_EVERY = 25;
/** Lines between two "[path:N]" markers (several text sources): they cost about three times as much. */
export const NAMED_LINE_EVERY = 50;

/** The name a marker uses for a source path ("-", piped input, is "stdin"). */
export function sourceLabel(path: string): string {
  return path === '-' ? 'stdin' : path;
}

/** "[p. 12]", or "[report.pdf p. 12]" when the file must be named. */
export function pageMarker(page: number, path?: string): string {
  return path === undefined ? `[p. ${page}]` : `[${sourceLabel(path)} p. ${page}]`;
}

/** "[line 40]", or "[src/x.ts:40]" when the file must be named. */
export function lineMarker(line: number, path?: string): string {
  return path === undefined ? `[line ${line}]` : `[${sourceLabel(path)}:${line}]`;
}

/**
 * Whether a model with this tokenizer can read and write source markers: a sample comes back unchanged
 * from encode → decode. A vocabulary without brackets or digits (the demo model's word list) reads each
 * marker, and the instruction to cite, as unknown tokens, which only disturb the document.
 */
export function tokenizerWritesMarkers(tokenizer: Pick<TextTokenizer, 'encode' | 'decode'>): boolean {
  const sample = `${pageMarker(12)} ${lineMarker(40)}`;
  return tokenizer.decode(tokenizer.encode(sample)).trim() === sample;
}

/** The plan note when citations asked for must be off because this tokenizer cannot write markers, else null. */
export function markersOffReason(tokenizer: Pick<TextTokenizer, 'encode' | 'decode'>): string | null {
  return tokenizerWritesMarkers(tokenizer) ? null : `citations are off: this model's vocabulary cannot write source markers such as ${lineMarker(40)}`;
}

/** Which kinds of markers a document carries: what the model is told to cite. */
export interface MarkerKinds {
  /** Page markers exist. */
  pages: boolean;
  /** Page markers name their file (several PDFs). */
  namedPages: boolean;
  /** Line markers exist. */
  lines: boolean;
  /** Line markers name their file (several text sources). */
  namedLines: boolean;
}

/** " Cite sources as [p. N] or [file:line], as marked in the text." in the forms the markers take; '' for none. */
export function citeInstruction(kinds: MarkerKinds): string {
  const forms: string[] = [];
  if (kinds.pages) forms.push(kinds.namedPages ? '[file p. N]' : '[p. N]');
  if (kinds.lines) forms.push(kinds.namedLines ? '[file:line]' : '[line N]');
  if (forms.length === 0) return '';
  return ` Cite sources as ${forms.join(' or ')}, as marked in the text.`;
}

export interface MarkedDocument {
  doc: Document;
  /** Every marker inserted, in document order (for measuring their token cost). */
  markers: string[];
  kinds: MarkerKinds;
}

/**
 * Puts markers into a document's segments one at a time, as they stream past: what it keeps is one
 * flag per source (whether its text so far ended a line). `kinds` (survey.ts) says whether markers
 * name their file; `onMarker` hears of each marker inserted, in order.
 */
export class SourceMarker {
  private readonly every: number;
  /** Whether the next text of a path starts a line: a long line may continue into the next segment. */
  private readonly atLineStart = new Map<string, boolean>();

  constructor(
    private readonly kinds: MarkerKinds,
    private readonly onMarker: (marker: string) => void,
    o: { lineEvery?: number } = {},
  ) {
    this.every = o.lineEvery ?? (kinds.namedLines ? NAMED_LINE_EVERY : LINE_EVERY);
    if (!Number.isInteger(this.every) || this.every < 1) throw new Error(`lineEvery must be a positive integer, got ${this.every}`);
  }

  /** `seg` with its markers (the same segment when it gets none). */
  mark(seg: Segment): Segment {
    const { path, page, lineStart } = seg.source;
    if (page !== undefined) {
      const marker = pageMarker(page, this.kinds.namedPages ? path : undefined);
      this.onMarker(marker);
      return { text: `${marker} ${seg.text}`, source: seg.source };
    }
    if (lineStart === undefined) return seg; // a file header ("==> path <=="): no lines of the file
    const marker = (line: number) => lineMarker(line, this.kinds.namedLines ? path : undefined);
    const text = markLines(seg.text, lineStart, this.every, this.atLineStart.get(path) ?? true, marker, this.onMarker);
    if (seg.text.length > 0) this.atLineStart.set(path, seg.text.endsWith('\n'));
    return { text, source: seg.source };
  }
}

/**
 * Returns a copy of a whole document in memory with source markers in its segments' text.
 * `lineEvery` overrides the interval between line markers.
 */
export function addSourceMarkers(doc: Document, o: { lineEvery?: number } = {}): MarkedDocument {
  const survey = new SourceSurvey();
  for (const seg of doc.segments) survey.add(seg);
  const kinds = survey.kinds();
  const markers: string[] = [];
  const marker = new SourceMarker(kinds, (m) => markers.push(m), o);
  return { doc: { ...doc, segments: doc.segments.map((s) => marker.mark(s)) }, markers, kinds };
}

/** `text` (lines from `firstLine` on) with a marker in front of line 1 and every `every`-th line. */
function markLines(
  text: string,
  firstLine: number,
  every: number,
  startsLine: boolean,
  lineMarker: (line: number) => string,
  onMarker: (marker: string) => void,
): string {
  const pieces: string[] = [];
  let line = firstLine;
  let from = 0; // text[from, at) is copied unchanged
  let at = 0; // start of `line` in text
  let lineBegins = startsLine;
  while (at < text.length) {
    if (lineBegins && (line === 1 || line % every === 0)) {
      const marker = lineMarker(line);
      onMarker(marker);
      pieces.push(text.slice(from, at), `${marker} `);
      from = at;
    }
    const nl = text.indexOf('\n', at);
    if (nl === -1) break;
    at = nl + 1;
    line++;
    lineBegins = true;
  }
  pieces.push(text.slice(from));
  return pieces.join('');
}
