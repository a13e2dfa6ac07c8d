// Checking what a model cites. The answer is scanned for bracketed citations in the forms the
// markers taught it (markers.ts), each is resolved against the inputs, and invalid ones are marked.
//
//   [p. 12]  [pp. 12–14]  [page 12]  [report.pdf p. 12]       a page of a PDF
//   [line 40]  [lines 40–52]  [src/x.ts:40]  [src/x.ts:40-52]  a line of a text source
//   [p. 3; p. 7]  [pp. 3, 7]  [src/a.ts:3, src/b.ts:9]        several, separated by ";" or ","
//
// A citation is valid when its file is an input of that kind (a PDF for pages, a text source for
// lines) and every page or line it names exists. Bracketed text that does not look like a citation
// ([0], [note: …], markdown links) is left alone. Something that starts like a citation but does
// not parse ([p. ], [p. twelve], [src/x.ts:abc]) is reported as malformed.
//
// Invalid and malformed citations are kept in the text and marked with "?" before the bracket
// closes: "[p. 999]" becomes "[p. 999?]". Nothing is dropped, so the reader still sees what the model
// claimed, and marking never changes a valid citation.

import type { Document } from '../../input/document.js';
import { sourceLabel } from './markers.js';
import { SourceSurvey, type SourceIndex } from './survey.js';

export type { SourceIndex } from './survey.js';

export interface Citation {
  /** The citation as written ("[p. 12]"; one part of "[p. 3; p. 12]" is "p. 12"). */
  text: string;
  /** Where `text` is in the answer: [start, end). */
  start: number;
  end: number;
  /** The input it resolves to, when it names one. */
  path?: string;
  page?: number;
  /** Last page of a range. */
  pageEnd?: number;
  line?: number;
  /** Last line of a range. */
  lineEnd?: number;
  valid: boolean;
  /** Why it is not valid. */
  reason?: string;
}

/** Pages of each PDF and lines of each text source of a whole document in memory (before markers are added). */
export function indexSources(doc: Document): SourceIndex {
  const survey = new SourceSurvey();
  for (const seg of doc.segments) survey.add(seg);
  return survey.index(doc.sources);
}

// --- finding citations ----------------------------------------------------------------------------

/** A bracket's content: one line, no nested brackets, not a markdown link "[text](url)". */
const BRACKET = /\[([^[\]\n]{1,300})\](?!\()/g;
/** "p. 12", "pp. 3–5", "page 12", "report.pdf p. 12". The file part is checked separately. */
const PAGE = /^(?:(?<file>\S(?:.*\S)?)\s+)?(?<key>pp?\.|pages?(?=\s*\d))\s*(?<num>.*)$/i;
/** "line 40", "lines 40–52". */
const LINE_WORD = /^lines?\s*(?<num>\d.*)$/i;
/** "src/x.ts:40": a file name without spaces or colons, a colon, then the rest. */
const PATH_LINE = /^(?<file>[^\s:]+):(?<num>.*)$/;
/** A number or a range "12–14" (hyphen, en dash or em dash). */
const NUMBER = /^(\d{1,9})(?:\s*[-–—]\s*(\d{1,9}))?$/;

/** One parsed part before it is checked: what kind, which file (as written) and numbers. */
type Parsed =
  | { kind: 'page' | 'line'; file?: string; first: number; last: number }
  | { kind: 'malformed'; what: 'page' | 'line' }
  | null;

/** Every citation in `answer`, resolved against the inputs, in order. */
export function findCitations(answer: string, index: SourceIndex): Citation[] {
  const found: Citation[] = [];
  for (const m of answer.matchAll(BRACKET)) {
    const contentStart = m.index! + 1;
    const parts = splitParts(m[1]!);
    // A bare number after a citation in the same bracket continues it: "[pp. 3, 7]".
    let previous: Extract<Parsed, { kind: 'page' | 'line' }> | null = null;
    const resolved: Citation[] = [];
    for (const part of parts) {
      let parsed = parsePart(part.text, index);
      const bare = NUMBER.exec(part.text);
      if (!parsed && bare && previous) parsed = { kind: previous.kind, file: previous.file, ...range(bare) };
      if (!parsed) {
        resolved.length = 0; // one part that is no citation: the bracket is ordinary text
        break;
      }
      if (parsed.kind !== 'malformed') previous = parsed;
      const at = contentStart + part.offset;
      resolved.push({ text: part.text, start: at, end: at + part.text.length, ...check(parsed, index) });
    }
    found.push(...resolved);
  }
  return found;
}

/** "[p. 999]" → "[p. 999?]": a "?" after each invalid citation, inside its bracket. */
export function markInvalid(answer: string, citations: Citation[]): string {
  let out = answer;
  for (const c of [...citations].sort((a, b) => b.end - a.end)) {
    if (!c.valid) out = `${out.slice(0, c.end)}?${out.slice(c.end)}`;
  }
  return out;
}

/** Splits a bracket's content at ";" and "," into trimmed parts with their offsets. */
function splitParts(content: string): Array<{ text: string; offset: number }> {
  const parts: Array<{ text: string; offset: number }> = [];
  let from = 0;
  for (let i = 0; i <= content.length; i++) {
    if (i < content.length && content[i] !== ';' && content[i] !== ',') continue;
    const raw = content.slice(from, i);
    const lead = raw.length - raw.trimStart().length;
    parts.push({ text: raw.trim(), offset: from + lead });
    from = i + 1;
  }
  return parts;
}

function range(m: RegExpExecArray): { first: number; last: number } {
  const first = Number(m[1]);
  return { first, last: m[2] === undefined ? first : Number(m[2]) };
}

/** Reads one part; null when it is not a citation at all. */
function parsePart(text: string, index: SourceIndex): Parsed {
  const page = PAGE.exec(text);
  if (page) {
    const file = page.groups!.file;
    if (file !== undefined && !looksLikeFile(file, index)) return null; // "[blank page 3]"
    const num = NUMBER.exec(page.groups!.num!.trim());
    return num ? { kind: 'page', file, ...range(num) } : { kind: 'malformed', what: 'page' };
  }
  const word = LINE_WORD.exec(text);
  if (word) {
    const num = NUMBER.exec(word.groups!.num!.trim());
    return num ? { kind: 'line', ...range(num) } : { kind: 'malformed', what: 'line' };
  }
  const pathLine = PATH_LINE.exec(text);
  if (pathLine && looksLikeFile(pathLine.groups!.file!, index)) {
    const rest = pathLine.groups!.num!;
    if (/^\s/.test(rest)) return null; // "[e.g.: this]" is prose, not "file:line"
    const num = NUMBER.exec(rest.replace(/^L/i, ''));
    return num ? { kind: 'line', file: pathLine.groups!.file, ...range(num) } : { kind: 'malformed', what: 'line' };
  }
  return null;
}

/** A name that could be a file: it has a dot or a slash, or names an input ("Makefile", "stdin"). */
function looksLikeFile(name: string, index: SourceIndex): boolean {
  return /[./]/.test(name) || findPath(name, [...index.pdfs.keys(), ...index.texts.keys()]).length > 0;
}

/** Input paths a written file name can mean: the exact path, "stdin" for "-", or a unique path suffix. */
function findPath(written: string, paths: string[]): string[] {
  const name = written.replace(/^\.\//, '');
  const exact = paths.filter((p) => p === name || sourceLabel(p) === name);
  if (exact.length) return exact;
  return paths.filter((p) => p.endsWith(`/${name}`));
}

type Verdict = Omit<Citation, 'text' | 'start' | 'end'>;

function check(p: Exclude<Parsed, null>, index: SourceIndex): Verdict {
  if (p.kind === 'malformed') {
    const example = p.what === 'page' ? '[p. 12]' : '[line 40] or [path:40]';
    return { valid: false, reason: `malformed: expected a ${p.what} number, as in ${example}` };
  }
  const isPage = p.kind === 'page';
  const own = isPage ? index.pdfs : index.texts;
  const other = isPage ? index.texts : index.pdfs;
  const what = isPage ? 'PDF' : 'text file';
  const unit = isPage ? 'page' : 'line';

  let path: string;
  if (p.file === undefined) {
    const all = [...own.keys()];
    if (all.length === 0) return { valid: false, reason: `no ${what} among the inputs` };
    if (all.length > 1) return { valid: false, reason: `several ${what}s were read: the citation must name one` };
    path = all[0]!;
  } else {
    const matches = findPath(p.file, [...own.keys()]);
    if (matches.length === 0) {
      if (findPath(p.file, [...other.keys()]).length > 0) {
        return { valid: false, reason: `${p.file} is a ${isPage ? 'text file: cite it by line' : 'PDF: cite it by page'}` };
      }
      return { valid: false, reason: `${p.file} is not one of the inputs` };
    }
    if (matches.length > 1) return { valid: false, reason: `${p.file} is ambiguous: ${matches.join(', ')}` };
    path = matches[0]!;
  }

  const count = own.get(path)!;
  const where: Omit<Verdict, 'valid'> = isPage ? { path, page: p.first } : { path, line: p.first };
  if (p.last !== p.first) {
    if (isPage) where.pageEnd = p.last;
    else where.lineEnd = p.last;
  }
  if (p.first < 1 || p.last < p.first) return { ...where, valid: false, reason: `not a ${unit} range` };
  if (p.last > count) {
    const n = p.last;
    return { ...where, valid: false, reason: `no ${unit} ${n}: ${sourceLabel(path)} has ${count} ${unit}${count === 1 ? '' : 's'}` };
  }
  return { ...where, valid: true };
}
