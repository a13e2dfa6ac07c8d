// readInputs / openInputs: what the user named (files, folders, globs, "-") → one document, in the
// given order, as a stream of segments.
//
// Two kinds of input, treated differently on purpose:
//   - named: a file on the command line, or stdin. If ctx cannot read it (missing, binary, empty,
//     undecodable, corrupt PDF), that is an error naming the file: the user asked for it.
//   - found: a file met while walking a folder or expanding a glob. If it cannot be read it is
//     skipped, and the skipped list says why; only a folder or glob that yields nothing is an error.
//
// All inputs are resolved (stat, walk, glob) before any is read, so a typo in the last argument fails
// at once rather than after a long PDF.
//
// A document of any length: its text streams past and is not held. The first reading checks every
// input and learns what it is (sources, skips, lines); a small document's text is kept from it
// (HOLD_CHARS), a large one is read again from its files each time it is needed (to count its tokens,
// then into the model). Inputs that cannot be read twice (stdin, named pipes, devices) are spooled
// (spool.ts) when a second reading may come. A named file streams segment by segment; a found file
// (at most --max-file-bytes) is read whole before any of it is given out, so a file skipped for its
// content leaves nothing behind.

import type { Stats } from 'node:fs';
import { open, readFile, realpath, stat } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import type { Readable } from 'node:stream';
import { CtxError, fsError } from '../errors.js';
import type { Document, Segment, SkippedSource, SourceInfo } from './document.js';
import { looksLikePdf } from './encoding.js';
import { globToRegExp, hasGlobChars, splitGlob } from './glob.js';
import { PdfReader, type PdfLimits, type PdfReadResult } from './pdf.js';
import { fromExtracted, sha256Hex, toExtracted, type PdfTextCache } from './pdf-text-cache.js';
import { Rejection } from './rejection.js';
import { Spool } from './spool.js';
import { STDIN_PATH, stdinChunks, stdinSegments } from './stdin.js';
import { readBytes, segmentText } from './text.js';
import { DEFAULT_MAX_FILE_BYTES, compareCodeUnits, walkDirectory, type Skip, type WalkOptions, type WalkResult } from './tree.js';

export interface ReadOptions {
  /** Size cap for files found in folders and globs (named files have none). Default 1 MiB. */
  maxFileBytes?: number;
  /** Where "-" reads from. Default process.stdin. */
  stdin?: Readable | NodeJS.ReadableStream;
  signal?: AbortSignal;
  /** Non-fatal problems (an unreadable .gitignore, a file that changed while it was read). */
  warn?: (message: string) => void;
  /** Follow symbolic links that lead outside a folder being walked (`--follow-links`). Default false. */
  followLinks?: boolean;
  /** Memory and time limits for parsing each PDF (pdf.ts has the defaults). */
  pdfLimits?: PdfLimits;
  /** Where PDFs' extracted text is kept, so that the same PDF is not parsed twice. Default: none. */
  pdfTextCache?: PdfTextCache | null;
  /** A named pipe or device that sends nothing at all for this long fails with one line naming it. Default 0: wait for ever. */
  pipeWaitMs?: number;
  /**
   * Keep the text of the first reading when the whole document has at most this many characters,
   * so that reading it again costs nothing. Past it, each later reading reads the inputs again.
   * Default HOLD_CHARS.
   */
  holdChars?: number;
  /**
   * A private folder where stdin and named pipes may be spooled when they are too long to hold:
   * called when one first needs it. Without it such an input can be read only once (fine for a
   * single reading, as `ctx inspect` does).
   */
  spoolDir?: () => string;
}

/** Characters of text kept from the first reading (16 Mi: at most 32 MiB of JavaScript strings). */
export const HOLD_CHARS = 16 * 1024 * 1024;

/** One file or stdin to read, in document order. */
type FileItem = { kind: 'file'; abs: string; display: string; named: boolean; group: Group | null; viaLink?: boolean };
type Item = { kind: 'stdin' } | FileItem;

/** A folder or glob on the command line: its files are "found", and it must yield something. */
interface Group {
  spec: string;
  /** Files and folders the walk left out, then files skipped for their content while reading. */
  skipped: Skip[];
  /** How many of its files were read. */
  read: number;
}

/** An input the first reading read: what it was, and how to read it again. */
interface ReadItem {
  item: Item;
  info: SourceInfo;
  /** How it is read again: a PDF file parsed again, a text file read again, or (stdin, pipes, devices) its spool. */
  how: 'pdf' | 'text' | 'pipe';
  spool: Spool | null;
}

/**
 * The inputs named, resolved and ready to be read; `segments()` reads them. Everything about the
 * document (sources, skipped, lines, characters) is known once the first reading is complete.
 */
export class Inputs {
  readonly sources: SourceInfo[] = [];
  readonly skipped: SkippedSource[] = [];
  /** Lines of each text source, for checking citations. */
  readonly textLines = new Map<string, number>();
  /** Characters of text, headers included. */
  chars = 0;
  private held: Segment[] | null = [];
  private readonly reads: ReadItem[] = [];
  private readings = 0;
  private firstDone = false;

  constructor(
    private readonly items: Item[],
    private readonly groups: Group[],
    /** Whether a "==> path <==" header names each source: several sources, or a folder. */
    private readonly withHeaders: boolean,
    private readonly opts: ReadOptions,
  ) {}

  /** The text is held (a small document): reading it again reads no file. */
  get isHeld(): boolean {
    return this.firstDone && this.held !== null;
  }

  /**
   * The document's segments, in order. The first call reads and checks the inputs (errors and skips
   * happen there) and must be read to its end before any other; later calls give the same segments
   * again, from memory or read again. A file that changed in between is an error naming it.
   */
  segments(signal = this.opts.signal): AsyncGenerator<Segment> {
    if (this.readings++ === 0) return this.firstReading(signal);
    if (!this.firstDone) throw new Error('the inputs are read again before their first reading ended');
    return this.held !== null ? fromArray(this.held, undefined) : this.readAgain(signal);
  }

  /** Frees spooled bytes. */
  async close(): Promise<void> {
    for (const r of this.reads) await r.spool?.close();
  }

  private async *firstReading(signal?: AbortSignal): AsyncGenerator<Segment> {
    const seen: SeenFiles = { read: new Map(), direct: await directPaths(this.items) };
    const pdf = new PdfReader(this.opts.pdfLimits);
    const framing = new Framing(this.withHeaders);
    try {
      for (const item of this.items) {
        signal?.throwIfAborted();
        const read = item.kind === 'stdin' ? yield* this.firstStdin(item, pdf, framing, signal) : yield* this.firstFile(item, pdf, seen, framing, signal);
        if (!read) continue;
        this.sources.push(read.info);
        this.reads.push(read);
        if (item.kind === 'file' && item.group) item.group.read++;
      }
    } finally {
      await pdf.close();
    }
    for (const group of this.groups) {
      if (group.read === 0) throw nothingToRead(group);
      // Walk-time skips (ignored, too large) and read-time skips (binary, empty) in one path order.
      const skipped = [...group.skipped].sort((a, b) => compareCodeUnits(a.path, b.path));
      for (const { path, reason } of skipped) this.skipped.push({ path, reason });
    }
    this.firstDone = true;
    // A held document needs no spool.
    if (this.held !== null) {
      for (const r of this.reads) {
        await r.spool?.close();
        r.spool = null;
      }
    }
  }

  /** Passes segments on, counting their characters and keeping them while the document is small. */
  private async *counted<R>(segments: AsyncGenerator<Segment, R>): AsyncGenerator<Segment, R> {
    const holdChars = this.opts.holdChars ?? HOLD_CHARS;
    for (;;) {
      const r = await segments.next();
      if (r.done) return r.value;
      this.chars += r.value.text.length;
      if (this.held !== null) {
        if (this.chars <= holdChars) this.held.push(r.value);
        else this.held = null;
      }
      yield r.value;
    }
  }

  /** A spool for an input that cannot be read twice, when a later reading may need it. */
  private newSpool(): Spool | null {
    return this.opts.spoolDir ? new Spool(this.opts.spoolDir) : null;
  }

  private async *firstStdin(item: Item, pdf: PdfReader, framing: Framing, signal?: AbortSignal): AsyncGenerator<Segment, ReadItem | null> {
    const spool = this.newSpool();
    try {
      const r = yield* this.counted(framing.frame(STDIN_PATH, stdinSegments(tee(stdinChunks(this.opts.stdin ?? process.stdin, signal), spool), pdf, signal)));
      const info: SourceInfo = { path: STDIN_PATH, kind: 'stdin', bytes: r.bytes };
      if (r.pages !== undefined) info.pages = r.pages;
      if (r.encoding) info.encoding = r.encoding;
      if (r.lines !== undefined) this.textLines.set(STDIN_PATH, r.lines);
      return { item, info, how: 'pipe', spool };
    } catch (e) {
      await spool?.close();
      if (e instanceof Rejection) throw e.toCtxError('stdin');
      throw e;
    }
  }

  private async *firstFile(item: FileItem, pdf: PdfReader, seen: SeenFiles, framing: Framing, signal?: AbortSignal): AsyncGenerator<Segment, ReadItem | null> {
    const { abs, display } = item;
    let spool: Spool | null = null;
    try {
      const before = await stat(abs);
      const regular = before.isFile();
      if (!regular) {
        // Pipes and devices (/dev/fd/63 from `<(cmd)`) have no path to compare; each is its own
        // input, read once and spooled. Text or PDF is told by their first bytes.
        spool = this.newSpool();
        const kind = before.isFIFO() ? 'fifo' : 'device';
        const bytes = tee(readBytes(abs, display, { kind, waitMs: this.opts.pipeWaitMs, signal }), spool);
        const r = yield* this.counted(framing.frame(display, stdinSegments(bytes, pdf, signal, display)));
        if (r.lines !== undefined) this.textLines.set(display, r.lines);
        const info: SourceInfo = r.pages !== undefined ? { path: display, kind: 'pdf', bytes: r.bytes, pages: r.pages } : { path: display, kind: 'text', bytes: r.bytes, encoding: r.encoding };
        return { item, info, how: 'pipe', spool };
      }
      const real = await realpath(abs);
      const direct = item.viaLink ? seen.direct.get(real) : undefined;
      if (direct !== undefined) throw new Rejection('duplicate', `is a symlink to ${direct} (read there)`);
      const earlier = seen.read.get(real);
      if (earlier !== undefined) throw new Rejection('duplicate', `is the same file as ${earlier} (already read)`);
      seen.read.set(real, display);

      if (await isPdf(abs)) {
        // Parsed whole, within the PDF reader's own limits.
        const r = this.opts.pdfTextCache ? await readPdfKept(abs, display, before, pdf, this.opts.pdfTextCache, this.opts) : await pdf.read({ path: abs }, display, signal);
        await warnIfChanged(abs, display, before, r.bytes, this.opts.warn);
        yield* this.counted(framing.frame(display, fromArray(r.segments, undefined)));
        return { item, info: { path: display, kind: 'pdf', bytes: r.bytes, pages: r.pages }, how: 'pdf', spool: null };
      }
      let text = segmentText(readBytes(abs, display, { signal }), display);
      // A found file is read whole before any of it goes on: if it is skipped, nothing of it was read.
      if (!item.named) text = await whole(text);
      const r = yield* this.counted(framing.frame(display, text));
      await warnIfChanged(abs, display, before, r.bytes, this.opts.warn);
      this.textLines.set(display, r.lines);
      return { item, info: { path: display, kind: 'text', bytes: r.bytes, encoding: r.encoding }, how: 'text', spool: null };
    } catch (e) {
      await spool?.close();
      if (signal?.aborted) throw e;
      if (e instanceof Rejection) {
        if (item.named) {
          // Naming the same file twice is harmless: it is read once.
          if (e.category === 'duplicate') {
            this.skipped.push({ path: display, reason: e.message });
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

  /** The segments again, from the inputs the first reading read; each must give what it gave then. */
  private async *readAgain(signal?: AbortSignal): AsyncGenerator<Segment> {
    const pdf = new PdfReader(this.opts.pdfLimits);
    const framing = new Framing(this.withHeaders);
    try {
      for (const { item, info, how, spool } of this.reads) {
        signal?.throwIfAborted();
        const path = item.kind === 'stdin' ? STDIN_PATH : item.abs;
        let bytes: number;
        try {
          if (how === 'pdf') {
            const r = this.opts.pdfTextCache ? await readPdfKept(path, info.path, await stat(path), pdf, this.opts.pdfTextCache, this.opts) : await pdf.read({ path }, info.path, signal);
            yield* framing.frame(info.path, fromArray(r.segments, undefined));
            bytes = r.bytes;
          } else if (how === 'text') {
            bytes = (yield* framing.frame(info.path, segmentText(readBytes(path, info.path, { signal }), info.path))).bytes;
          } else {
            if (spool === null) throw new Error(`${info.path} can be read only once: openInputs needs a spoolDir to read it again`);
            bytes = (yield* framing.frame(info.path, stdinSegments(spool.read(signal), pdf, signal, info.path))).bytes;
          }
        } catch (e) {
          if (signal?.aborted || !(e instanceof Rejection || (e as NodeJS.ErrnoException)?.code)) throw e;
          const why = e instanceof Rejection ? e.message : fsError(e, '').message;
          throw new CtxError('input', `changed since ctx first read it (now it ${why}); run again`, { path: info.path });
        }
        if (bytes !== info.bytes) {
          throw new CtxError('input', `changed since ctx first read it (${info.bytes} bytes then, ${bytes} now); run again`, { path: info.path });
        }
      }
    } finally {
      await pdf.close();
    }
  }
}

/**
 * Resolves what `specs` name (nothing is read yet). Missing files, folders or globs with nothing to
 * read, and "-" twice fail here.
 */
export async function openInputs(specs: string[], opts: ReadOptions = {}): Promise<Inputs> {
  if (specs.length === 0) throw new CtxError('usage', 'no input given: name files, folders, globs, or - for stdin');
  const { items, groups } = await resolveSpecs(specs, opts);
  return new Inputs(items, groups, groups.length > 0 || (await distinctNamed(items)) > 1, opts);
}

/** All the inputs read into one Document held in memory (tests; hierarchical summaries hold the text anyway). */
export async function readInputs(specs: string[], opts: ReadOptions = {}): Promise<Document> {
  const inputs = await openInputs(specs, { ...opts, holdChars: Infinity, spoolDir: undefined });
  const segments: Segment[] = [];
  try {
    for await (const seg of inputs.segments()) segments.push(seg);
  } finally {
    await inputs.close();
  }
  return { segments, sources: inputs.sources, skipped: inputs.skipped };
}

/**
 * How many inputs will be read when only named ones are given (files, stdin): a file named twice is
 * read once. More than one, and each gets a header.
 */
async function distinctNamed(items: Item[]): Promise<number> {
  const files = new Set<string>();
  let others = 0;
  for (const item of items) {
    const real = item.kind === 'file' ? await realpath(item.abs).catch(() => null) : null;
    const regular = item.kind === 'file' && (await stat(item.abs).then((s) => s.isFile(), () => false));
    if (real !== null && regular) files.add(real);
    else others++;
  }
  return files.size + others;
}

// --- how a source is framed, and small stream helpers ------------------------------------------------

/**
 * Headers when there is more than one source or the sources came from a folder: the model then
 * sees which file each part comes from. A header is a segment of its own so that lineStart of the
 * text segments keeps counting the file's own lines; it comes with the source's first segment (a
 * source with none gets none), and the source's last segment ends with a line break.
 */
class Framing {
  private any = false;

  constructor(private readonly on: boolean) {}

  async *frame<R>(path: string, segments: AsyncGenerator<Segment, R>): AsyncGenerator<Segment, R> {
    if (!this.on) return yield* segments;
    let last: Segment | null = null;
    for (;;) {
      const r = await segments.next();
      if (r.done) {
        if (last) yield last.text.endsWith('\n') ? last : { ...last, text: `${last.text}\n` };
        return r.value;
      }
      if (last) yield last;
      else {
        const label = path === STDIN_PATH ? 'stdin' : path;
        yield { text: `${this.any ? '\n' : ''}==> ${label} <==\n`, source: { path } };
        this.any = true;
      }
      last = r.value;
    }
  }
}

/** Chunks passed on, each written to the spool first (when there is one). */
async function* tee(chunks: AsyncIterable<Buffer>, spool: Spool | null): AsyncGenerator<Buffer> {
  for await (const c of chunks) {
    await spool?.write(c);
    yield c;
  }
}

async function* fromArray<R>(segments: Segment[], result: R): AsyncGenerator<Segment, R> {
  yield* segments;
  return result;
}

/** Reads a generator to its end first, then gives the same segments and result. */
async function whole<R>(g: AsyncGenerator<Segment, R>): Promise<AsyncGenerator<Segment, R>> {
  const segments: Segment[] = [];
  for (;;) {
    const r = await g.next();
    if (r.done) return fromArray(segments, r.value);
    segments.push(r.value);
  }
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

/** A regular file is a PDF by extension, or by content for PDFs saved without one. */
async function isPdf(abs: string): Promise<boolean> {
  if (extname(abs).toLowerCase() === '.pdf') return true;
  const fh = await open(abs, 'r');
  try {
    const head = new Uint8Array(5);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return looksLikePdf(head.subarray(0, bytesRead));
  } finally {
    await fh.close();
  }
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

