// The text ctx extracted from PDFs, kept so that asking about the same PDF again does not parse it
// again (a 261-page PDF takes seconds to parse; its kept text, milliseconds to load).
//
// An entry is found by the PDF's identity: the sha256 of its bytes, under the extractor that made the
// text (pdf-parse's version and this file's FORMAT: a new extractor makes old entries misses). The
// bytes decide, not the name: a renamed or copied PDF with the same bytes is a hit, and an edited one
// is a miss even if its size and modification time were put back. Each entry also records the path,
// size and modification time it was made from (shown by nothing yet; kept for a person looking at the
// folder), and the sha256 again, checked on load.
//
//   <dir>/<key>.json   { format, extractor, sha256, path, size, mtimeMs, pages, bytes, texts: [[page, text], …] }
//
// Like the session cache: the folder is private (0700), entries are 0600 (they hold a document's text),
// a save is atomic (a temp file, then rename), a hit marks the entry used now (its mtime), least
// recently used entries go once the folder passes its cap, and a cache problem never fails a run:
// the caller gets it as a warning and the PDF is parsed.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Segment } from './document.js';

/** Bump when what an entry holds, or how pages become text, changes. */
const FORMAT = 1;
const SUFFIX = '.json';
const TEMP_PREFIX = '.tmp-';
/** Extracted text is about a third of a PDF's size or less: 256 MiB holds hundreds of books. */
export const DEFAULT_TEXT_CACHE_MAX_BYTES = 256 * 1024 ** 2;

/** A PDF's text as the reader returns it: the pages with text, in order (source.path is the caller's). */
export interface ExtractedPdf {
  pages: number;
  bytes: number;
  /** [page number, text] for each page with text. */
  texts: Array<[number, string]>;
}

interface Entry extends ExtractedPdf {
  format: number;
  extractor: string;
  sha256: string;
  path: string;
  size: number;
  mtimeMs: number;
}

export class PdfTextCache {
  constructor(
    readonly dir: string,
    private readonly maxBytes = DEFAULT_TEXT_CACHE_MAX_BYTES,
  ) {}

  /** The text kept for a PDF with these bytes, or null (none, or an entry that does not hold up: it is removed). */
  async load(sha256: string): Promise<ExtractedPdf | null> {
    const path = this.entryPath(sha256);
    let entry: Entry;
    try {
      entry = JSON.parse(await readFile(path, 'utf8')) as Entry;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') await rm(path, { force: true }).catch(() => {});
      return null;
    }
    if (entry.format !== FORMAT || entry.extractor !== extractor() || entry.sha256 !== sha256 || !Array.isArray(entry.texts)) {
      await rm(path, { force: true }).catch(() => {});
      return null;
    }
    const now = new Date();
    await utimes(path, now, now).catch(() => {});
    return { pages: entry.pages, bytes: entry.bytes, texts: entry.texts };
  }

  /** Keeps `pdf`'s text for a file with these bytes; throws the fs error (the caller warns). */
  async save(sha256: string, file: { path: string; size: number; mtimeMs: number }, pdf: ExtractedPdf): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const entry: Entry = { format: FORMAT, extractor: extractor(), sha256, ...file, ...pdf };
    const temp = join(this.dir, `${TEMP_PREFIX}${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      await writeFile(temp, JSON.stringify(entry), { mode: 0o600 });
      await rename(temp, this.entryPath(sha256));
    } catch (e) {
      await rm(temp, { force: true }).catch(() => {});
      throw e;
    }
    await this.evict(sha256);
  }

  /** Removes every entry; returns how many bytes went. */
  async clear(): Promise<{ count: number; bytes: number }> {
    let count = 0;
    let bytes = 0;
    for (const name of await this.names()) {
      const path = join(this.dir, name);
      const st = await stat(path).catch(() => null);
      await rm(path, { force: true });
      if (st && name.endsWith(SUFFIX)) {
        count++;
        bytes += st.size;
      }
    }
    return { count, bytes };
  }

  /** Least recently used entries go until the folder fits its cap (never `keep`, just written). */
  private async evict(keep: string): Promise<void> {
    const entries: Array<{ path: string; bytes: number; used: number }> = [];
    for (const name of await this.names()) {
      if (!name.endsWith(SUFFIX) || name === `${keep}${SUFFIX}`) continue;
      const path = join(this.dir, name);
      const st = await stat(path).catch(() => null);
      if (st) entries.push({ path, bytes: st.size, used: st.mtimeMs });
    }
    const kept = await stat(this.entryPath(keep)).then((s) => s.size, () => 0);
    let total = kept + entries.reduce((s, e) => s + e.bytes, 0);
    for (const e of entries.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxBytes) break;
      await rm(e.path, { force: true }).catch(() => {});
      total -= e.bytes;
    }
  }

  private entryPath(sha256: string): string {
    return join(this.dir, `${sha256}${SUFFIX}`);
  }

  private async names(): Promise<string[]> {
    return readdir(this.dir).catch(() => []);
  }
}

/** The sha256 of a file's bytes, as hex. */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The PDF reader's segments as an entry keeps them, and back. */
export function toExtracted(r: { pages: number; bytes: number; segments: Segment[] }): ExtractedPdf {
  return { pages: r.pages, bytes: r.bytes, texts: r.segments.map((s) => [s.source.page!, s.text]) };
}

export function fromExtracted(pdf: ExtractedPdf, displayPath: string): { pages: number; bytes: number; segments: Segment[] } {
  return { pages: pdf.pages, bytes: pdf.bytes, segments: pdf.texts.map(([page, text]) => ({ text, source: { path: displayPath, page } })) };
}

let extractorName: string | undefined;
/** "pdf-parse <version>/<FORMAT>": what made the text. */
function extractor(): string {
  if (extractorName === undefined) {
    // pdf-parse's package.json is not among its exports: found from its entry module, folders up.
    let dir = dirname(fileURLToPath(import.meta.resolve('pdf-parse')));
    let version = 'unknown';
    for (let i = 0; i < 6; i++, dir = dirname(dir)) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === 'pdf-parse') {
          version = pkg.version ?? version;
          break;
        }
      } catch {
        // not this folder
      }
    }
    extractorName = `pdf-parse ${version}/${FORMAT}`;
  }
  return extractorName;
}
