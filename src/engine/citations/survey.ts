// What the citation side needs to know about a document before marking it and after the answer,
// learned from its first reading one segment at a time, so that the text itself need not be kept:
//
//   - which paths have pages and which have lines: when several do, markers name their file;
//   - each text source's line count, and each PDF's page count: what citations are checked against.
//
// Its size is a few numbers per source, whatever the document's length.

import type { Segment, SourceInfo } from '../../input/document.js';
import type { MarkerKinds } from './markers.js';

/** What the inputs hold, to check citations against. */
export interface SourceIndex {
  /** PDF path → page count (pages without text included). */
  pdfs: Map<string, number>;
  /** Text source path → line count. */
  texts: Map<string, number>;
}

export class SourceSurvey {
  /** Paths that have page segments (PDFs). */
  private readonly pagePaths = new Set<string>();
  /** Text source path → line breaks seen so far. */
  private readonly lineBreaks = new Map<string, number>();
  /** Text source path → whether its text so far ends inside a line (a last line without a break counts). */
  private readonly endsOpen = new Map<string, boolean>();
  /** Some text source has text: line markers exist. */
  private anyLines = false;

  /** Takes in one segment of the document, before markers are added. */
  add(seg: Segment): void {
    const { path, page, lineStart } = seg.source;
    if (page !== undefined) this.pagePaths.add(path);
    if (lineStart === undefined) return; // a page, or a file header ("==> path <=="): no lines of a file
    this.lineBreaks.set(path, (this.lineBreaks.get(path) ?? 0) + countLineBreaks(seg.text));
    if (seg.text.length > 0) {
      this.endsOpen.set(path, !seg.text.endsWith('\n'));
      this.anyLines = true;
    }
  }

  /** Which markers the document gets (markers.ts): naming depends on how many sources of each kind there are. */
  kinds(): MarkerKinds {
    const textPaths = this.lineBreaks.size;
    return { pages: this.pagePaths.size > 0, namedPages: this.pagePaths.size > 1, lines: this.anyLines, namedLines: textPaths > 1 };
  }

  /** Pages of each PDF (from `sources`, the inputs as read) and lines of each text source. */
  index(sources: SourceInfo[]): SourceIndex {
    const pdfs = new Map<string, number>();
    for (const s of sources) if (s.pages !== undefined) pdfs.set(s.path, s.pages);
    const texts = new Map<string, number>();
    for (const [path, breaks] of this.lineBreaks) {
      if (!pdfs.has(path)) texts.set(path, breaks + (this.endsOpen.get(path) ? 1 : 0));
    }
    return { pdfs, texts };
  }
}

function countLineBreaks(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
}
