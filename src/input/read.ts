// readInputs: what the user named (files, folders, globs, "-") → one Document, in the given order.
//
// Two kinds of input, treated differently on purpose:
//   - named: a file on the command line, or stdin. If ctx cannot read it (missing, binary, empty,
//     undecodable, corrupt PDF), that is an error naming the file: the user asked for it.
//   - found: a file met while walking a folder or expanding a glob. If it cannot be read it is
//     skipped, and Document.skipped says why; only a folder or glob that yields nothing is an error.
//
// All inputs are resolved (stat, walk, glob) before any is read, so a typo in the last argument fails
// at once rather than after a long PDF.

import type { Stats } from 'node:fs';
import { open, readFile, realpath, stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { CtxError, fsError } from '../errors.js';
import type { Document, Segment, SourceInfo } from './document.js';
import { looksLikePdf } from './encoding.js';
import { globToRegExp, hasGlobChars, splitGlob } from './glob.js';
import { PdfReader, type PdfLimits, type PdfReadResult } from './pdf.js';
import { fromExtracted, sha256Hex, toExtracted, type PdfTextCache } from './pdf-text-cache.js';
import { Rejection } from './rejection.js';
import { STDIN_PATH, readStdin } from './stdin.js';
import { readTextFile } from './text.js';
import { DEFAULT_MAX_FILE_BYTES, compareCodeUnits, walkDirectory, type Skip, type WalkOptions, type WalkResult } from './tree.js';

export interface ReadOptions {
  /** Size cap for files found in folders and globs (named files have none). Default 1 MiB. */
  maxFileBytes?: number;
  /** Where "-" reads from. Default process.stdin. */
  stdin?: Readable | NodeJS.ReadableStream;
  /**
   * True when ctx itself added "-" because input was piped, rather than the user typing it: an
   * empty stdin is then simply no input instead of an error.
   */
  implicitStdin?: boolean;
  signal?: AbortSignal;
  /** Non-fatal problems (an unreadable .gitignore, a file that changed while it was read). */
  warn?: (message: string) => void;
  /** Follow symbolic links that lead outside a folder being walked (`--follow-links`). Default false. */
  followLinks?: boolean;
  /** Memory and time limits for parsing each PDF (pdf.ts has the defaults). */
  pdfLimits?: PdfLimits;
  /** Where PDFs' extracted text is kept, so that the same PDF is not parsed twice. Default: none. */
  pdfTextCache?: PdfTextCache | null;
}

/** One file or stdin to read, in document order. */
type Item =
  | { kind: 'stdin' }
  | { kind: 'file'; abs: string; display: string; named: boolean; group: Group | null; viaLink?: boolean };

/** A folder or glob on the command line: its files are "found", and it must yield something. */
interface Group {
  spec: string;
  /** Files and folders the walk left out, then files skipped for their content while reading. */
  skipped: Skip[];
  /** How many of its files were read. */
  read: number;
}

export async function readInputs(specs: string[], opts: ReadOptions = {}): Promise<Document> {
  if (specs.length === 0) throw new CtxError('usage', 'no input given: name files, folders, globs, or - for stdin');
  const { items, groups } = await resolveSpecs(specs, opts);

  const doc: Document = { segments: [], sources: [], skipped: [] };
  const reads: ItemRead[] = [];
  const seen: SeenFiles = { read: new Map(), direct: await directPaths(items) };
  const pdf = new PdfReader(opts.pdfLimits);
  try {
    for (const item of items) {
      opts.signal?.throwIfAborted();
      const got = item.kind === 'stdin' ? await readStdinItem(pdf, opts) : await readFileItem(item, pdf, seen, doc, opts);
      if (!got) continue;
      reads.push(got);
      if (item.kind === 'file' && item.group) item.group.read++;
    }
  } finally {
    await pdf.close();
  }

  // Headers when there is more than one source or the sources came from a folder: the model then
  // sees which file each part comes from. A header is a segment of its own so that lineStart of the
  // text segments keeps counting the file's own lines.
  const withHeaders = reads.length > 1 || groups.length > 0;
  for (const { segments, info } of reads) {
    if (withHeaders) {
      const label = info.path === STDIN_PATH ? 'stdin' : info.path;
      const blank = doc.segments.length ? '\n' : '';
      doc.segments.push({ text: `${blank}==> ${label} <==\n`, source: { path: info.path } });
      endWithNewline(segments);
    }
    for (const seg of segments) doc.segments.push(seg); // a loop: spreading 100k+ segments overflows the stack
    doc.sources.push(info);
  }

  for (const group of groups) {
    if (group.read === 0) throw nothingToRead(group);
    // Walk-time skips (ignored, too large) and read-time skips (binary, empty) in one path order.
    const skipped = [...group.skipped].sort((a, b) => compareCodeUnits(a.path, b.path));
    for (const { path, reason } of skipped) doc.skipped.push({ path, reason });
  }
  return doc;
}

// --- resolving what the specs name -------------------------------------------------------------

async function resolveSpecs(specs: string[], opts: ReadOptions): Promise<{ items: Item[]; groups: Group[] }> {
  const items: Item[] = [];
  const groups: Group[] = [];
  const addGroup = (spec: string, walk: WalkResult) => {
    const group: Group = { spec, skipped: walk.skipped, read: 0 };
    // Fail before reading anything when a folder or glob left nothing to read.
    if (walk.files.length === 0) throw nothingToRead(group);
    groups.push(group);
    for (const f of walk.files) items.push({ kind: 'file', abs: f.abs, display: f.display, named: false, group, viaLink: f.viaLink });
  };

  let stdinNamed = false;
  for (const spec of specs) {
    opts.signal?.throwIfAborted();
    if (spec === STDIN_PATH) {
      if (stdinNamed) throw new CtxError('usage', 'stdin ("-") is named more than once');
      stdinNamed = true;
      items.push({ kind: 'stdin' });
      continue;
    }
    let st;
    try {
      st = await stat(spec);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT' && hasGlobChars(spec)) {
        addGroup(spec, await expandGlob(spec, opts));
        continue;
      }
      throw fsError(e, spec);
    }
    if (st.isDirectory()) {
      addGroup(spec, await walkDirectory(resolve(spec), spec, walkOptions(opts)));
    } else if (st.isFile() || st.isFIFO() || st.isCharacterDevice()) {
      // FIFOs and devices are allowed when named: `ctx ask <(zcat log.gz) "…"` passes /dev/fd/63.
      items.push({ kind: 'file', abs: resolve(spec), display: spec, named: true, group: null });
    } else {
      throw new CtxError('input', 'is not a regular file, folder or pipe', { path: spec });
    }
  }
  return { items, groups };
}

function walkOptions(opts: ReadOptions): WalkOptions {
  return { maxFileBytes: opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES, signal: opts.signal, warn: opts.warn, followLinks: opts.followLinks };
}

/** A glob that names no existing file: the files below its fixed prefix that match it. */
async function expandGlob(spec: string, opts: ReadOptions): Promise<WalkResult> {
  const { base, pattern } = splitGlob(spec);
  const noMatch = () => new CtxError('input', 'no such file, and no files match it as a pattern', { path: spec });
  const baseIsDir = await stat(base).then((s) => s.isDirectory(), () => false);
  if (!baseIsDir) throw noMatch();
  const walk = await walkDirectory(resolve(base), base, {
    ...walkOptions(opts),
    match: globToRegExp(pattern),
    // Without "**" a pattern cannot reach deeper than its own number of folders.
    maxDepth: pattern.includes('**') ? undefined : pattern.split('/').length - 1,
  });
  if (walk.files.length === 0 && walk.skipped.length === 0) throw noMatch();
  return walk;
}

// --- reading one item --------------------------------------------------------------------------

interface ItemRead {
  segments: Segment[];
  info: SourceInfo;
}

async function readStdinItem(pdf: PdfReader, opts: ReadOptions): Promise<ItemRead | null> {
  try {
    const r = await readStdin(opts.stdin ?? process.stdin, pdf, opts.signal);
    const info: SourceInfo = { path: STDIN_PATH, kind: 'stdin', bytes: r.bytes };
    if (r.pages !== undefined) info.pages = r.pages;
    if (r.encoding) info.encoding = r.encoding;
    return { segments: r.segments, info };
  } catch (e) {
    if (e instanceof Rejection) {
      if (opts.implicitStdin && e.category === 'empty') return null;
      throw e.toCtxError('stdin');
    }
    throw e;
  }
}

async function readFileItem(
  item: Extract<Item, { kind: 'file' }>,
  pdf: PdfReader,
  seen: SeenFiles,
  doc: Document,
  opts: ReadOptions,
): Promise<ItemRead | null> {
  const { abs, display } = item;
  try {
    const before = await stat(abs);
    const regular = before.isFile();
    if (regular) {
      // Pipes and devices (/dev/fd/63 from `<(cmd)`) have no path to compare; each is its own input.
      const real = await realpath(abs);
      const direct = item.viaLink ? seen.direct.get(real) : undefined;
      if (direct !== undefined) throw new Rejection('duplicate', `is a symlink to ${direct} (read there)`);
      const earlier = seen.read.get(real);
      if (earlier !== undefined) throw new Rejection('duplicate', `is the same file as ${earlier} (already read)`);
      seen.read.set(real, display);
    }

    if (await isPdf(abs, regular)) {
      const r = regular && opts.pdfTextCache ? await readPdfKept(abs, display, before, pdf, opts.pdfTextCache, opts) : await pdf.read({ path: abs }, display, opts.signal);
      if (regular) await warnIfChanged(abs, display, before, r.bytes, opts.warn);
      return { segments: r.segments, info: { path: display, kind: 'pdf', bytes: r.bytes, pages: r.pages } };
    }
    const r = await readTextFile(abs, display, { signal: opts.signal, fifo: before.isFIFO() });
    if (regular) await warnIfChanged(abs, display, before, r.bytes, opts.warn);
    return { segments: r.segments, info: { path: display, kind: 'text', bytes: r.bytes, encoding: r.encoding } };
  } catch (e) {
    if (opts.signal?.aborted) throw e;
    if (e instanceof Rejection) {
      if (item.named) {
        // Naming the same file twice is harmless: it is read once.
        if (e.category === 'duplicate') {
          doc.skipped.push({ path: display, reason: e.message });
          return null;
        }
        throw e.toCtxError(display);
      }
      item.group!.skipped.push({ path: display, reason: e.message, category: e.category });
      return null;
    }
    if ((e as NodeJS.ErrnoException)?.code) {
      if (item.named) throw fsError(e, display);
      item.group!.skipped.push({ path: display, reason: `cannot be read: ${fsError(e, '').message}`, category: 'unreadable' });
      return null;
    }
    throw e;
  }
}

/**
 * A PDF's text from the text cache when these bytes were parsed before, else parsed (from the bytes
 * hashed, so the entry is the text of exactly those bytes) and kept. A cache that cannot be written
 * is a warning; the run goes on.
 */
async function readPdfKept(abs: string, display: string, before: Stats, pdf: PdfReader, cache: PdfTextCache, opts: ReadOptions): Promise<PdfReadResult> {
  const data = new Uint8Array(await readFile(abs, { signal: opts.signal }));
  const sha256 = sha256Hex(data);
  const kept = await cache.load(sha256);
  if (kept) return fromExtracted(kept, display);
  const r = await pdf.read({ data }, display, opts.signal);
  try {
    await cache.save(sha256, { path: abs, size: before.size, mtimeMs: before.mtimeMs }, toExtracted(r));
  } catch (e) {
    opts.warn?.(`${display}: could not keep its text in ${cache.dir} (${(e as Error).message}); it will be parsed again next time`);
  }
  return r;
}

/**
 * tar's "file changed as we read it": a file written or truncated while ctx read it gives a document
 * that matches neither version, so the run goes on but says so (size, modification time, and the
 * bytes actually read are compared with what stat said before reading).
 */
async function warnIfChanged(abs: string, display: string, before: Stats, bytesRead: number, warn?: (message: string) => void): Promise<void> {
  const after = await stat(abs).catch(() => null);
  if (after && after.size === before.size && after.mtimeMs === before.mtimeMs && bytesRead === before.size) return;
  const sizes = after === null ? `${before.size} bytes, then removed` : after.size !== before.size ? `${before.size} → ${after.size} bytes` : `${before.size} bytes`;
  warn?.(`${display}: file changed as we read it (${sizes}, ${bytesRead} read); the answer may not match either version`);
}

/** Files already read, and files walks found directly, both by realpath → display path. */
interface SeenFiles {
  read: Map<string, string>;
  direct: Map<string, string>;
}

/**
 * Realpaths of the files folder walks found directly (not through a symlink). A link to one of them
 * is then skipped wherever it comes in the order, so the text is cited under its real path.
 */
async function directPaths(items: Item[]): Promise<Map<string, string>> {
  const paths = new Map<string, string>();
  for (const item of items) {
    if (item.kind !== 'file' || !item.group || item.viaLink) continue;
    const real = await realpath(item.abs).catch(() => null); // unreadable: reported when it is read
    if (real && !paths.has(real)) paths.set(real, item.display);
  }
  return paths;
}

/** By extension, or by content for PDFs saved without one. */
async function isPdf(abs: string, regular: boolean): Promise<boolean> {
  if (extname(abs).toLowerCase() === '.pdf') return true;
  if (!regular) return false; // never read ahead on a pipe: the bytes would be lost
  const fh = await open(abs, 'r');
  try {
    const head = new Uint8Array(5);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return looksLikePdf(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
}

function endWithNewline(segments: Segment[]): void {
  const last = segments[segments.length - 1];
  if (last && !last.text.endsWith('\n')) last.text += '\n';
}

// --- "nothing to read" ---------------------------------------------------------------------------

/** "nothing to read: all 5 files were ignored or skipped (3 ignored: a, b; 2 binary: c, d)". */
function nothingToRead(group: Group): CtxError {
  const n = group.skipped.length;
  if (n === 0) return new CtxError('emptyInput', 'nothing to read: the folder is empty', { path: group.spec });
  const byCategory = new Map<string, string[]>();
  for (const s of group.skipped) {
    const list = byCategory.get(s.category) ?? [];
    list.push(s.path);
    byCategory.set(s.category, list);
  }
  const parts = [...byCategory.entries()]
    .sort((a, b) => b[1].length - a[1].length)
    .map(([category, paths]) => {
      const examples = paths.slice(0, 2).join(', ') + (paths.length > 2 ? ', …' : '');
      return `${paths.length} ${category}: ${examples}`;
    });
  const what = group.skipped.some((s) => s.path.endsWith('/')) ? 'files and folders' : 'files';
  return new CtxError('emptyInput', `nothing to read: all ${n} ${what} were ignored or skipped (${parts.join('; ')})`, {
    path: group.spec,
  });
}

