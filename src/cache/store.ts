// The session cache on disk: one file per read document under $XDG_CACHE_HOME/ctx/sessions, named
// by its key (key.ts), in the format of format.ts.
//
//   load   a missing entry is a miss; a damaged one is deleted and reported, never used; a hit
//          marks the entry as used now (its modification time is its last use).
//   save   atomic: a temp file in the same folder, fsync, rename, fsync of the folder. If anything
//          fails (disk full, permissions) the temp file is removed, whatever was there stays, and
//          the caller gets a one-line reason: a cache problem never fails a run. Ctrl-C while
//          saving removes the temp file too and lets the interruption through.
//   evict  after each save, least recently used entries go until the cache fits its size cap.
//   temp   a save in progress is ".tmp-<key>-<owner>-<random>", where <owner> is the writing process
//          (pid and start time, model/owner.ts). Temp files whose owner is gone (a killed run) are
//          removed by the next run that opens the cache; live ones count toward the size cap.
//
// The folder is private to the user (0700) and entries are 0600: they hold what was read of a document.

import { randomBytes } from 'node:crypto';
import { open, readdir, rename, rm, stat, utimes, type FileHandle } from 'node:fs/promises';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { CtxError, fsError } from '../errors.js';
import { formatBytes } from '../units.js';
import { isRunning, ownerTag, parseTag } from '../model/owner.js';
import { ctxCacheDir, makePrivateDir } from '../model/paths.js';
import { CorruptEntry, MAX_HEAD_BYTES, payloadBytes, readEntry, readHeader, writeEntry, type EntryHeader, type EntryMeta, type StoredSession } from './format.js';

export const ENTRY_SUFFIX = '.ctxs';
const TEMP_PREFIX = '.tmp-';
/** A temp file of an older ctx (no start time in its name) this old was left by a killed process. */
const STALE_TEMP_MS = 60 * 60 * 1000;
export const DEFAULT_CACHE_MAX_BYTES = 4 * 1024 ** 3;

/** The sessions folder: $CTX_CACHE_DIR/sessions, else $XDG_CACHE_HOME/ctx/sessions, else ~/.cache/ctx/sessions. */
export function sessionsDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(ctxCacheDir(env), 'sessions');
}

/** Where PDFs' extracted text is kept (input/pdf-text-cache.ts): beside the sessions, in pdf-text. */
export function pdfTextDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(ctxCacheDir(env), 'pdf-text');
}

/** Where what documents' encodings gave is kept (token-memo.ts): beside the sessions, in document-tokens. */
export function tokenMemoDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(ctxCacheDir(env), 'document-tokens');
}

export type LoadResult =
  | { kind: 'miss' }
  | { kind: 'hit'; header: EntryHeader; session: StoredSession; bytes: number; seconds: number }
  /** The entry was damaged (or unreadable) and has been removed; `message` says which file and why. */
  | { kind: 'discarded'; message: string };

export type SaveResult =
  | { kind: 'saved'; bytes: number; seconds: number; evicted: number }
  | { kind: 'skipped'; message: string }
  | { kind: 'failed'; message: string };

export interface CacheEntryInfo {
  id: string;
  path: string;
  bytes: number;
  lastUsed: Date;
  /** Null when the header cannot be read (the entry would be discarded on use). */
  header: EntryHeader | null;
}

export interface SessionCacheOptions {
  /** Size cap in bytes for all entries together. */
  maxBytes?: number;
  /** Test hook (CTX_TEST_CACHE_WRITE_ERROR): make writes fail with this errno code. */
  failWritesWith?: string;
}

export class SessionCache {
  readonly maxBytes: number;
  private cleaned = false;

  constructor(
    readonly dir: string,
    private readonly o: SessionCacheOptions = {},
  ) {
    this.maxBytes = o.maxBytes ?? DEFAULT_CACHE_MAX_BYTES;
  }

  /** The cache stores typed arrays in the machine's byte order and its format says little-endian. */
  static get supported(): boolean {
    return endianness() === 'LE';
  }

  pathOf(key: string): string {
    return join(this.dir, `${key}${ENTRY_SUFFIX}`);
  }

  async load(key: string, signal?: AbortSignal): Promise<LoadResult> {
    await this.removeStaleTemps();
    const path = this.pathOf(key);
    const t0 = performance.now();
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'miss' };
      return { kind: 'discarded', message: `cache entry cannot be read, reading the document instead: ${fsError(e, path).message}` };
    }
    try {
      const { size } = await fh.stat();
      // No save writes more than the cap, so a bigger file is not ours: refuse it before reading any of it.
      if (size > this.maxBytes + MAX_HEAD_BYTES) throw new CorruptEntry(`${formatBytes(size)} is more than the cache size cap ${formatBytes(this.maxBytes)}`);
      const { header, session } = await readEntry(fh, size, signal);
      if (header.key !== key) throw new CorruptEntry(`holds the entry ${header.key.slice(0, 12)}…, not ${key.slice(0, 12)}…`);
      await fh.close();
      const now = new Date();
      await utimes(path, now, now).catch(() => {}); // last use; a read-only cache still works
      return { kind: 'hit', header, session, bytes: size, seconds: (performance.now() - t0) / 1000 };
    } catch (e) {
      await fh.close().catch(() => {});
      if (!(e instanceof CorruptEntry)) {
        if (signal?.aborted) throw e;
        return { kind: 'discarded', message: `cache entry cannot be read, reading the document instead: ${fsError(e, path).message}` };
      }
      await this.discard(path);
      return { kind: 'discarded', message: `${path}: discarded a corrupt cache entry (${e.message}); reading the document instead` };
    }
  }

  /** Removes an entry found to be unusable (e.g. by a caller's own consistency check). */
  async discard(path: string): Promise<void> {
    await rm(path, { force: true }).catch(() => {});
  }

  /**
   * Writes `session` (KV heads of `headDim` values per row) as the entry for `key`. The size cap is
   * checked from its rows before anything is written; the arrays are written as they are (no copy),
   * so the session may share them with a live sequence (contract.ts, SequenceSnapshot).
   */
  async save(key: string, meta: EntryMeta, session: StoredSession, headDim: number, signal?: AbortSignal): Promise<SaveResult> {
    const estimate = payloadBytes(session, headDim);
    if (estimate > this.maxBytes) {
      return { kind: 'skipped', message: `not cached: the session takes ${formatBytes(estimate)}, more than the cache size cap ${formatBytes(this.maxBytes)} (--cache-max-size)` };
    }
    const t0 = performance.now();
    const path = this.pathOf(key);
    const tmp = join(this.dir, `${TEMP_PREFIX}${key.slice(0, 16)}-${ownerTag()}-${randomBytes(4).toString('hex')}`);
    let fh: FileHandle | undefined;
    let bytes: number;
    try {
      makePrivateDir(this.dir);
      fh = await open(tmp, 'wx', 0o600);
      bytes = await writeEntry(fh, key, meta, session, headDim, { signal, failWith: this.o.failWritesWith });
      await fh.sync();
      await fh.close();
      fh = undefined;
      await rename(tmp, path);
      await syncFolder(this.dir);
    } catch (e) {
      await fh?.close().catch(() => {});
      await rm(tmp, { force: true }).catch(() => {});
      if (signal?.aborted) throw e;
      return { kind: 'failed', message: `could not save the document to the cache (${cacheProblem(e, this.dir)}); the cache is unchanged` };
    }
    const evicted = await this.evict(key);
    return { kind: 'saved', bytes, seconds: (performance.now() - t0) / 1000, evicted };
  }

  /** Every entry, most recently used first. A missing folder is an empty cache. */
  async list(): Promise<CacheEntryInfo[]> {
    await this.removeStaleTemps();
    const out: CacheEntryInfo[] = [];
    for (const name of await this.names()) {
      if (!name.endsWith(ENTRY_SUFFIX)) continue;
      const path = join(this.dir, name);
      let fh: FileHandle | undefined;
      try {
        fh = await open(path, 'r');
        const st = await fh.stat();
        let header: EntryHeader | null = null;
        try {
          header = (await readHeader(fh, st.size)).header;
        } catch (e) {
          if (!(e instanceof CorruptEntry)) throw e;
        }
        out.push({ id: name.slice(0, -ENTRY_SUFFIX.length), path, bytes: st.size, lastUsed: st.mtime, header });
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(e, path, 'io');
      } finally {
        await fh?.close().catch(() => {});
      }
    }
    return out.sort((a, b) => b.lastUsed.getTime() - a.lastUsed.getTime());
  }

  /** Removes entries; returns what was removed. */
  async remove(entries: CacheEntryInfo[]): Promise<{ count: number; bytes: number }> {
    let bytes = 0;
    for (const e of entries) {
      try {
        await rm(e.path);
        bytes += e.bytes;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw fsError(err, e.path, 'io');
      }
    }
    return { count: entries.length, bytes };
  }

  /** Removes every entry and any temp file left behind. */
  async clear(): Promise<{ count: number; bytes: number }> {
    const removed = await this.remove(await this.list());
    for (const name of await this.names()) {
      if (name.startsWith(TEMP_PREFIX)) await rm(join(this.dir, name), { force: true });
    }
    return removed;
  }

  /**
   * Removes least recently used entries until the cache fits its cap, never `keep` (the entry just
   * written), and temp files abandoned by killed runs. Returns how many entries went.
   */
  async evict(keep: string): Promise<number> {
    const entries: Array<{ path: string; bytes: number; used: number; id: string }> = [];
    let inProgress = 0;
    for (const name of await this.names()) {
      const path = join(this.dir, name);
      const st = await stat(path).catch(() => null);
      if (!st) continue;
      if (name.startsWith(TEMP_PREFIX)) {
        if (tempIsStale(name, st.mtimeMs)) await rm(path, { force: true }).catch(() => {});
        else inProgress += st.size; // another run's save: it will be an entry soon
      } else if (name.endsWith(ENTRY_SUFFIX)) {
        entries.push({ path, bytes: st.size, used: st.mtimeMs, id: name.slice(0, -ENTRY_SUFFIX.length) });
      }
    }
    let total = inProgress + entries.reduce((n, e) => n + e.bytes, 0);
    let evicted = 0;
    for (const e of entries.sort((a, b) => a.used - b.used)) {
      if (total <= this.maxBytes) break;
      if (e.id === keep) continue;
      await rm(e.path, { force: true }).catch(() => {});
      total -= e.bytes;
      evicted++;
    }
    return evicted;
  }

  /**
   * Removes temp files left by runs that were killed while saving (their owner is gone); once per
   * cache object, so each run cleans up after the ones before it. Returns what was removed.
   */
  async removeStaleTemps(): Promise<{ count: number; bytes: number }> {
    const removed = { count: 0, bytes: 0 };
    if (this.cleaned) return removed;
    this.cleaned = true;
    let names: string[];
    try {
      names = await this.names();
    } catch {
      return removed; // the caller meets the problem itself, with its own message
    }
    for (const name of names) {
      if (!name.startsWith(TEMP_PREFIX)) continue;
      const path = join(this.dir, name);
      const st = await stat(path).catch(() => null);
      if (!st || !tempIsStale(name, st.mtimeMs)) continue;
      await rm(path, { force: true }).then(
        () => ((removed.count += 1), (removed.bytes += st.size)),
        () => {},
      );
    }
    return removed;
  }

  private async names(): Promise<string[]> {
    try {
      return await readdir(this.dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw new CtxError('io', `the session cache cannot be read: ${cacheProblem(e, this.dir)}`, { path: this.dir, cause: e });
    }
  }
}

/** Whether a temp file was left by a run that is gone: its owner (in its name) is not running. */
function tempIsStale(name: string, mtimeMs: number): boolean {
  // ".tmp-<key16>-<owner>-<random>"
  const owner = parseTag(name.slice(TEMP_PREFIX.length).split('-')[1] ?? '');
  if (owner === null) return Date.now() - mtimeMs > STALE_TEMP_MS;
  if (owner.start === null) return !isRunning(owner) || Date.now() - mtimeMs > STALE_TEMP_MS;
  return !isRunning(owner);
}

/** Why the cache folder cannot be used, in words: a file in its place, a read-only disk, permissions. */
function cacheProblem(e: unknown, dir: string): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOTDIR' || code === 'EEXIST') return `${dir} (or a folder above it) is a file, not a folder; remove it or set CTX_CACHE_DIR`;
  if (code === 'EROFS') return `${dir} is on a read-only file system; set CTX_CACHE_DIR to a writable folder, or use --no-cache`;
  if (code === 'EACCES' || code === 'EPERM') return `permission denied on ${dir}; set CTX_CACHE_DIR to a folder of yours, or use --no-cache`;
  return fsError(e, dir).message;
}

/** fsync of the folder makes the rename itself durable; not every filesystem allows it. */
async function syncFolder(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // EISDIR/EINVAL/EPERM on some filesystems: the rename is still atomic, only less durable.
  } finally {
    await fh?.close().catch(() => {});
  }
}
