// The plan of a hierarchical summary: which sections of the document are summarised on their own,
// and how their summaries are combined, before any model runs. Pure: it needs only the document, the
// limits and a token counter (the model's tokenizer), so tests check boundaries directly.
//
// Sections follow the document's structure and are as large as the limits allow:
//   - a folder whose files fit in one section is one section ("src/ (3 files)");
//   - otherwise its files are packed into sections in order, and each subfolder is planned the same
//     way; a file too big for a section is split — a PDF into page ranges ("pp. 12–24"), text at
//     paragraph breaks ("lines 1–240"), a paragraph at line breaks, a line at a measured length;
//   - summaries are then combined along the tree: a big file's parts, then each folder, then the
//     whole. When one combine prompt cannot hold all of a node's summaries, consecutive ones are
//     combined in groups first ("src/ (part 2/3)"), and again until they fit.
//
// Sizes are tokens counted with the model's tokenizer. Every section's text is counted whole before
// it is accepted. A combine is planned for the worst case (every summary at its token cap), so the
// number of steps is known in advance and progress is exact.

import { CtxError } from '../../errors.js';
import type { Document } from '../../input/document.js';
import { sourceLabel } from '../citations/markers.js';

/** Tokens of a text, measured with the model's tokenizer. */
export type Count = (text: string) => Promise<number>;

export interface SectionLimits {
  /** Most tokens of document text one section may hold. */
  sectionTokens: number;
  /** Most tokens of summaries (with their headings) one combine prompt may hold. */
  combineTokens: number;
  /** Most tokens a summary that is combined later may have. */
  partTokens: number;
}

export interface Section {
  /** 0-based, in document order. */
  index: number;
  label: string;
  /** The document text the model reads for this section. */
  text: string;
  /** Tokens of `text`, counted whole. */
  tokens: number;
  /** Source paths it covers. */
  paths: string[];
}

export type PlanNode =
  | { kind: 'section'; label: string; section: Section }
  | { kind: 'combine'; label: string; children: PlanNode[] };

export interface SummaryPlan {
  root: PlanNode;
  sections: Section[];
  combines: number;
  /** Model calls: sections + combines. */
  steps: number;
}

/** The steps in the order they run: children before their parent, the root last. */
export function stepsInOrder(root: PlanNode): PlanNode[] {
  const out: PlanNode[] = [];
  const visit = (n: PlanNode) => {
    if (n.kind === 'combine') n.children.forEach(visit);
    out.push(n);
  };
  visit(root);
  return out;
}

/** How summaries are laid out in a combine prompt; `combineCost` plans with the same layout. */
export function combineText(parts: Array<{ label: string; summary: string }>): string {
  return parts.map((p) => `${heading(p.label)}${p.summary.trim()}`).join('\n\n');
}

function heading(label: string): string {
  return `### ${label}\n`;
}

// --- the document as files and blocks ---------------------------------------------------------------

/** Text that stays together in one section: a PDF page, a paragraph, a line, or a piece of a line. */
interface Block {
  text: string;
  tokens: number;
  page?: number;
  firstLine?: number;
  lastLine?: number;
}

interface SourceFile {
  path: string;
  /** The "==> path <==" header the document gives this file ('' without headers). */
  header: string;
  /** Header for a later part of a split file ('' without headers). */
  continuedHeader: string;
  blocks: Block[];
  /** Header + blocks, each counted alone. */
  tokens: number;
}

interface Folder {
  path: string;
  entries: Array<{ kind: 'file'; file: SourceFile } | { kind: 'folder'; folder: Folder }>;
  tokens: number;
  files: number;
}

/** Plans the sections and combines of `doc` (usually with source markers in it). */
export async function planSummary(doc: Document, limits: SectionLimits, count: Count): Promise<SummaryPlan> {
  if (limits.sectionTokens < 1) throw new CtxError('doesNotFit', `no room for a section (${limits.sectionTokens} tokens)`);
  const files = await sourceFiles(doc, limits.sectionTokens, count);
  if (files.length === 0) throw new CtxError('emptyInput', 'the inputs hold no text to summarize');
  const planner = new Planner(limits, count, files.length > 1);
  const top = folderTree(files);
  const root = top.entries.length === 1 && top.entries[0]!.kind === 'file' ? await planner.file(top.entries[0]!.file) : await planner.folder(top);
  return { root, sections: planner.sections, combines: planner.combines, steps: planner.sections.length + planner.combines };
}

/** Groups the segments by source file (in order) and cuts each file into blocks no bigger than `limit`. */
async function sourceFiles(doc: Document, limit: number, count: Count): Promise<SourceFile[]> {
  type Raw = { path: string; header: string; pages: Array<{ page: number; text: string }>; text: string; firstLine: number };
  const raws: Raw[] = [];
  let current: Raw | null = null;
  for (const seg of doc.segments) {
    const { path, page, lineStart } = seg.source;
    const isHeader = page === undefined && lineStart === undefined;
    if (!current || current.path !== path || (isHeader && (current.text || current.pages.length))) {
      current = { path, header: '', pages: [], text: '', firstLine: lineStart ?? 1 };
      raws.push(current);
    }
    if (isHeader) current.header += seg.text;
    else if (page !== undefined) current.pages.push({ page, text: seg.text });
    else current.text += seg.text;
  }

  const files: SourceFile[] = [];
  for (const raw of raws) {
    const header = raw.header.replace(/^\n+/, '');
    const continuedHeader = header ? `==> ${sourceLabel(raw.path)} (continued) <==\n` : '';
    const room = limit - Math.max(await count(header), await count(continuedHeader));
    if (room < 1) throw new CtxError('doesNotFit', `a section of ${limit} tokens cannot even hold the header of ${raw.path}`);
    const blocks: Block[] = [];
    for (const { page, text } of raw.pages) {
      const tokens = await count(text);
      if (tokens <= room) blocks.push({ text, tokens, page });
      else for (const b of await splitLines(text, 1, room, count)) blocks.push({ ...b, page, firstLine: undefined, lastLine: undefined });
    }
    if (raw.text) {
      for (const para of paragraphs(raw.text, raw.firstLine)) {
        const tokens = await count(para.text);
        if (tokens <= room) blocks.push({ ...para, tokens });
        else blocks.push(...(await splitLines(para.text, para.firstLine, room, count)));
      }
    }
    if (blocks.length === 0) continue;
    const tokens = (header ? await count(header) : 0) + blocks.reduce((n, b) => n + b.tokens, 0);
    files.push({ path: raw.path, header, continuedHeader, blocks, tokens });
  }
  return files;
}

/** Paragraphs: each run of non-blank lines with the blank lines after it (so they join back exactly). */
function paragraphs(text: string, firstLine: number): Array<{ text: string; firstLine: number; lastLine: number }> {
  const out: Array<{ text: string; firstLine: number; lastLine: number }> = [];
  const lines = splitKeepingBreaks(text);
  let start = 0;
  for (let i = 1; i <= lines.length; i++) {
    const endsParagraph = i === lines.length || (isBlank(lines[i - 1]!) && !isBlank(lines[i]!));
    if (!endsParagraph) continue;
    out.push({ text: lines.slice(start, i).join(''), firstLine: firstLine + start, lastLine: firstLine + i - 1 });
    start = i;
  }
  return out;
}

/** Lines with their line breaks, so that joining them gives the text back. */
function splitKeepingBreaks(text: string): string[] {
  const lines: string[] = [];
  let from = 0;
  for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', from)) {
    lines.push(text.slice(from, nl + 1));
    from = nl + 1;
  }
  if (from < text.length) lines.push(text.slice(from));
  return lines;
}

function isBlank(line: string): boolean {
  return line.trim() === '';
}

/** Blocks of whole lines, and pieces of the lines that alone exceed `room`. */
async function splitLines(text: string, firstLine: number, room: number, count: Count): Promise<Block[]> {
  const out: Block[] = [];
  const lines = splitKeepingBreaks(text);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const tokens = await count(line);
    const n = firstLine + i;
    if (tokens <= room) {
      out.push({ text: line, tokens, firstLine: n, lastLine: n });
      continue;
    }
    let rest = line;
    while (rest.length > 0) {
      const cut = await longestPrefix(rest, room, count);
      const piece = rest.slice(0, cut);
      out.push({ text: piece, tokens: await count(piece), firstLine: n, lastLine: n });
      rest = rest.slice(cut);
    }
  }
  return out;
}

/** Length of the longest prefix of `text` with at most `room` tokens (at least one character). */
async function longestPrefix(text: string, room: number, count: Count): Promise<number> {
  let lo = 1; // always fits: a section takes at least one character
  let hi = text.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if ((await count(text.slice(0, mid))) <= room) lo = mid;
    else hi = mid - 1;
  }
  // Never end between the two halves of a surrogate pair.
  const code = text.charCodeAt(lo - 1);
  return lo > 1 && lo < text.length && code >= 0xd800 && code <= 0xdbff ? lo - 1 : lo;
}

/**
 * The folders the file paths name, in the order they first appear. A folder's path ends with "/"
 * ("repo/src/"); the top ('') holds what has no common folder. Single-folder chains at the top are
 * skipped, so `ctx summarize repo/` starts at "repo/".
 */
function folderTree(files: SourceFile[]): Folder {
  const top: Folder = { path: '', entries: [], tokens: 0, files: 0 };
  const folders = new Map<string, Folder>([['', top]]);
  const folderAt = (path: string): Folder => {
    const known = folders.get(path);
    if (known) return known;
    const inside = path.slice(0, -1); // without its own trailing "/"
    const parent = folderAt(inside.slice(0, inside.lastIndexOf('/') + 1));
    const folder: Folder = { path, entries: [], tokens: 0, files: 0 };
    folders.set(path, folder);
    parent.entries.push({ kind: 'folder', folder });
    return folder;
  };
  for (const file of files) folderAt(file.path.slice(0, file.path.lastIndexOf('/') + 1)).entries.push({ kind: 'file', file });

  const addUp = (f: Folder): void => {
    for (const e of f.entries) {
      if (e.kind === 'folder') addUp(e.folder);
      f.tokens += e.kind === 'file' ? e.file.tokens : e.folder.tokens;
      f.files += e.kind === 'file' ? 1 : e.folder.files;
    }
  };
  addUp(top);
  let start = top;
  while (start.entries.length === 1 && start.entries[0]!.kind === 'folder') start = start.entries[0]!.folder;
  return start;
}

// --- planning ------------------------------------------------------------------------------------------

class Planner {
  readonly sections: Section[] = [];
  combines = 0;

  constructor(
    private readonly limits: SectionLimits,
    private readonly count: Count,
    /** Labels name the file when the document has more than one. */
    private readonly manyFiles: boolean,
  ) {}

  /** A folder: one section if all of it fits, else its files in sections and its subfolders, combined. */
  async folder(f: Folder): Promise<PlanNode> {
    const label = folderLabel(f.path);
    const all = allFiles(f);
    if (f.tokens <= this.limits.sectionTokens) {
      const whole = await this.filesSection(all, `${label} (${plural(all.length, 'file')})`);
      if (whole) return whole;
    }
    const children: PlanNode[] = [];
    let run: SourceFile[] = [];
    const flush = async () => {
      children.push(...(await this.packFiles(run)));
      run = [];
    };
    for (const e of f.entries) {
      if (e.kind === 'folder') {
        await flush();
        children.push(await this.folder(e.folder));
      } else if (e.file.tokens <= this.limits.sectionTokens) {
        run.push(e.file);
      } else {
        await flush();
        children.push(await this.file(e.file));
      }
    }
    await flush();
    return this.combine(label, children);
  }

  /** One file: a section if it fits, else its parts (page ranges, line ranges), combined. */
  async file(file: SourceFile): Promise<PlanNode> {
    const label = sourceLabel(file.path);
    if (file.tokens <= this.limits.sectionTokens) {
      const whole = await this.filesSection([file], label);
      if (whole) return whole;
    }
    const parts: PlanNode[] = [];
    let blocks: Block[] = [];
    let tokens = 0;
    let first = true;
    const close = async () => {
      // The whole text is counted; while it exceeds the limit, blocks go back to the next section.
      const pending: Block[] = [];
      while (blocks.length > 0) {
        const header = first ? file.header : file.continuedHeader;
        const text = header + blocks.map((b) => b.text).join('');
        const exact = await this.count(text);
        if (exact <= this.limits.sectionTokens || blocks.length === 1) {
          parts.push(this.section(this.partLabel(file, blocks), text, exact, [file.path]));
          first = false;
          break;
        }
        pending.unshift(blocks.pop()!);
      }
      blocks = pending;
      tokens = pending.reduce((n, b) => n + b.tokens, 0);
    };
    const headerTokens = await this.count(file.header);
    const continuedTokens = await this.count(file.continuedHeader);
    for (const b of file.blocks) {
      const room = this.limits.sectionTokens - (first ? headerTokens : continuedTokens);
      if (blocks.length > 0 && tokens + b.tokens > room) await close();
      blocks.push(b);
      tokens += b.tokens;
    }
    while (blocks.length > 0) await close();
    return this.combine(label, parts);
  }

  /** Consecutive small files of one folder, packed into as few sections as fit. */
  private async packFiles(files: SourceFile[]): Promise<PlanNode[]> {
    const out: PlanNode[] = [];
    let group: SourceFile[] = [];
    let tokens = 0;
    const close = async () => {
      const pending: SourceFile[] = [];
      while (group.length > 0) {
        const node = await this.filesSection(group, groupLabel(group));
        if (node || group.length === 1) {
          out.push(node ?? (await this.file(group[0]!)));
          break;
        }
        pending.unshift(group.pop()!);
      }
      group = pending;
      tokens = pending.reduce((n, f) => n + f.tokens, 0);
    };
    for (const f of files) {
      if (group.length > 0 && tokens + f.tokens > this.limits.sectionTokens) await close();
      group.push(f);
      tokens += f.tokens;
    }
    while (group.length > 0) await close();
    return out;
  }

  /** A section of whole files, or null when their text, counted whole, exceeds the limit. */
  private async filesSection(files: SourceFile[], label: string): Promise<PlanNode | null> {
    const text = files.map((f) => f.header + f.blocks.map((b) => b.text).join('')).join('');
    const tokens = await this.count(text);
    if (tokens > this.limits.sectionTokens) return null;
    return this.section(label, text, tokens, files.map((f) => f.path));
  }

  private section(label: string, text: string, tokens: number, paths: string[]): PlanNode {
    const section: Section = { index: this.sections.length, label, text, tokens, paths };
    this.sections.push(section);
    return { kind: 'section', label, section };
  }

  /** "pp. 12–24", "p. 7", "lines 1–240", with the file's name when the document has several. */
  private partLabel(file: SourceFile, blocks: Block[]): string {
    const first = blocks[0]!;
    const last = blocks[blocks.length - 1]!;
    const range =
      first.page !== undefined
        ? first.page === last.page ? `p. ${first.page}` : `pp. ${first.page}–${last.page}`
        : first.firstLine === last.lastLine ? `line ${first.firstLine}` : `lines ${first.firstLine}–${last.lastLine}`;
    return this.manyFiles ? `${sourceLabel(file.path)} ${range}` : range;
  }

  /**
   * Combines `children` under `label`: one step when their summaries fit one prompt, else groups of
   * consecutive children first. A single child needs no combining.
   */
  private async combine(label: string, children: PlanNode[]): Promise<PlanNode> {
    let nodes = children;
    let round = 0;
    while (nodes.length > 1 && (await this.combineCost(nodes)) > this.limits.combineTokens) {
      const groups: PlanNode[][] = [];
      let group: PlanNode[] = [];
      for (const n of nodes) {
        if (group.length > 0 && (await this.combineCost([...group, n])) > this.limits.combineTokens) {
          groups.push(group);
          group = [];
        }
        group.push(n);
      }
      groups.push(group);
      if (groups.length === nodes.length) {
        const one = await this.combineCost([nodes[0]!]);
        throw new CtxError(
          'doesNotFit',
          `a combine step holds ${this.limits.combineTokens} tokens of summaries, too few for two summaries of up to ${this.limits.partTokens} tokens ` +
            `(about ${one} with a heading): lower --max-tokens or use a model with a longer window`,
        );
      }
      round++;
      nodes = groups.map((g, i) => (g.length === 1 ? g[0]! : this.combineNode(`${label} (part ${i + 1}/${groups.length}${round > 1 ? `, level ${round}` : ''})`, g)));
    }
    return nodes.length === 1 ? nodes[0]! : this.combineNode(label, nodes);
  }

  private combineNode(label: string, children: PlanNode[]): PlanNode {
    this.combines++;
    return { kind: 'combine', label, children };
  }

  /** Worst-case tokens of the combine text for `nodes`: every summary at its cap. */
  private async combineCost(nodes: PlanNode[]): Promise<number> {
    const layout = combineText(nodes.map((n) => ({ label: n.label, summary: '' })));
    return (await this.count(layout)) + nodes.length * this.limits.partTokens;
  }
}

function allFiles(f: Folder): SourceFile[] {
  return f.entries.flatMap((e) => (e.kind === 'file' ? [e.file] : allFiles(e.folder)));
}

function folderLabel(path: string): string {
  return path === '' ? 'all inputs' : path;
}

/** "src/a.ts", or "src/a.ts … src/c.ts (3 files)". */
function groupLabel(files: SourceFile[]): string {
  const first = sourceLabel(files[0]!.path);
  if (files.length === 1) return first;
  return `${first} … ${sourceLabel(files[files.length - 1]!.path)} (${files.length} files)`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
