// Downloads a registry model from the Hugging Face hub (or a mirror) into the cache:
//
//   <cache>/models/.tmp-<name>-<pid>/          while downloading; a file in progress is "<file>.part"
//   <cache>/models/<name>/                      only ever created by renaming a finished .tmp folder
//   <cache>/models/<name>/.ctx-model.json       what was downloaded (repo, revision, sizes, sha256)
//
// So a folder under its final name is always complete. An interrupted pull leaves its .tmp folder;
// the next pull adopts it (once its process is gone) and resumes each .part with an HTTP Range
// request. Every file is checked against the size and sha256 the registry knows, or else the ones
// the hub advertises for LFS files (X-Linked-Size / X-Linked-Etag).

import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { open, rename, rm, stat, truncate } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CtxError, fsError } from '../errors.js';
import { modelsCacheDir } from './paths.js';
import type { HubEntry, RegistryFile } from './registry.js';

export const MARKER = '.ctx-model.json';

export interface PullProgress {
  file: string;
  /** 0-based index of the file being downloaded, and how many files there are. */
  fileIndex: number;
  fileCount: number;
  fileDone: number;
  fileTotal: number | null;
  /** Bytes on disk for the whole model so far, and the total when every size is known. */
  done: number;
  total: number | null;
  /** Set on the first report of a file whose earlier partial download is being continued. */
  resumedFrom?: number;
}

export interface PullOptions {
  /** Folder that holds the models (default: <ctx cache>/models). */
  cacheDir?: string;
  /** Where CTX_HF_ENDPOINT, HF_ENDPOINT and HF_TOKEN are read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  onProgress?: (p: PullProgress) => void;
  signal?: AbortSignal;
  /** Attempts after a connection drops mid-file, each resuming where the last stopped (default 3). */
  retries?: number;
  /** Give up on a connection that delivers nothing for this long (default 60 s). */
  idleTimeoutMs?: number;
}

/** What `.ctx-model.json` records. */
export interface DownloadRecord {
  name: string;
  hub: string;
  revision: string;
  endpoint: string;
  downloadedAt: string;
  files: Array<{ path: string; size: number; sha256: string; checkedAgainst: 'registry' | 'hub' | 'none' }>;
}

export function hubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env.CTX_HF_ENDPOINT || env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
}

export function fileUrl(endpoint: string, repo: string, revision: string, path: string): string {
  const enc = (s: string) => s.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${enc(repo)}/resolve/${encodeURIComponent(revision)}/${enc(path)}`;
}

/** The marker of a finished download, or null when `dir` is not one. */
export function readDownloadRecord(dir: string): DownloadRecord | null {
  try {
    return JSON.parse(readFileSync(join(dir, MARKER), 'utf8')) as DownloadRecord;
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// Errors

/** A failure worth another attempt: the connection dropped or stalled; the .part file stays for resuming. */
class RetryableError extends Error {}

/** Connection failures that another attempt a second later will not fix. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

function causeCode(e: unknown): string | undefined {
  let c: unknown = e;
  for (let depth = 0; c && depth < 4; depth++) {
    const code = (c as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    c = (c as { cause?: unknown }).cause;
  }
  return undefined;
}

function unreachableError(entry: HubEntry, endpoint: string, code: string): CtxError {
  return new CtxError(
    'download',
    `cannot reach ${endpoint} to download "${entry.name}" (${code}). Without network access, fetch ${entry.hub} (revision ${entry.revision}) ` +
      `on another machine, copy its folder here and pass --model <folder>; or set CTX_HF_ENDPOINT to a reachable mirror`,
  );
}

// ---------------------------------------------------------------------------------------------
// The pull

interface PullState {
  entry: HubEntry;
  endpoint: string;
  token: string | undefined;
  opts: PullOptions;
  sizes: (number | null)[];
  doneBefore: number[];
}

/** Downloads `entry` into the cache (or finds it already there) and returns its folder. */
export async function pullModel(entry: HubEntry, opts: PullOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  const cacheDir = opts.cacheDir ?? modelsCacheDir(env);
  const finalDir = join(cacheDir, entry.name);
  if (readDownloadRecord(finalDir)) return finalDir;
  if (existsSync(finalDir)) {
    throw new CtxError('download', `a folder is in the way of the download and was not made by ctx; remove it or use it with --model ${finalDir}`, { path: finalDir });
  }
  try {
    mkdirSync(cacheDir, { recursive: true });
  } catch (e) {
    throw fsError(e, cacheDir, 'io');
  }
  const tmpDir = claimTmpDir(cacheDir, entry.name);
  checkDiskSpace(entry, cacheDir, tmpDir);

  const state: PullState = {
    entry,
    endpoint: hubEndpoint(env),
    token: env.HF_TOKEN || undefined,
    opts,
    sizes: entry.files.map((f) => f.size),
    doneBefore: entry.files.map(() => 0),
  };
  const record: DownloadRecord = {
    name: entry.name,
    hub: entry.hub,
    revision: entry.revision,
    endpoint: state.endpoint,
    downloadedAt: '',
    files: [],
  };
  try {
    for (let i = 0; i < entry.files.length; i++) {
      const got = await downloadFile(state, i, tmpDir);
      if (got) record.files.push(got);
    }
  } catch (e) {
    // Keep partial bytes for the next pull to resume; an attempt that got nothing leaves nothing.
    if (folderBytes(tmpDir) === 0) rmSync(tmpDir, { recursive: true, force: true });
    throw e;
  }
  record.downloadedAt = new Date().toISOString();
  // The per-file notes of verified files were only for resuming; the marker now says it all.
  for (const f of entry.files) rmSync(join(tmpDir, `${f.path}.ctx-verified`), { force: true });
  writeFileSync(join(tmpDir, MARKER), JSON.stringify(record, null, 2) + '\n');
  try {
    renameSync(tmpDir, finalDir);
  } catch (e) {
    // Another ctx finished the same model first: theirs is as good as ours.
    const code = (e as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && readDownloadRecord(finalDir)) {
      rmSync(tmpDir, { recursive: true, force: true });
      return finalDir;
    }
    throw fsError(e, finalDir, 'io');
  }
  return finalDir;
}

/** Whether a process id is running (signal 0 checks without sending anything). */
function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function tmpDirsOf(cacheDir: string, name: string): Array<{ dir: string; pid: number }> {
  const prefix = `.tmp-${name}-`;
  let names: string[];
  try {
    names = readdirSync(cacheDir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith(prefix) && /^\d+$/.test(n.slice(prefix.length)))
    .map((n) => ({ dir: join(cacheDir, n), pid: Number(n.slice(prefix.length)) }));
}

/**
 * This process's download folder. A folder left by a pull whose process has ended is taken over, so
 * its partial files resume; one whose process is still running means two pulls of the same model.
 */
function claimTmpDir(cacheDir: string, name: string): string {
  const mine = join(cacheDir, `.tmp-${name}-${process.pid}`);
  for (const { dir, pid } of tmpDirsOf(cacheDir, name)) {
    if (pid === process.pid) continue;
    if (pidAlive(pid)) throw new CtxError('download', `another ctx (pid ${pid}) is downloading "${name}"; wait for it to finish or stop it`);
    if (!existsSync(mine)) renameSync(dir, mine);
    else rmSync(dir, { recursive: true, force: true });
  }
  mkdirSync(mine, { recursive: true });
  return mine;
}

/** Folders of finished and unfinished downloads of `name`; used by `ctx models rm`. */
export function removeDownload(name: string, cacheDir: string = modelsCacheDir()): { removed: boolean; bytes: number } {
  let bytes = 0;
  let removed = false;
  const finalDir = join(cacheDir, name);
  const dirs = tmpDirsOf(cacheDir, name).filter(({ pid }) => pid === process.pid || !pidAlive(pid)).map(({ dir }) => dir);
  if (readDownloadRecord(finalDir)) dirs.push(finalDir);
  for (const dir of dirs) {
    bytes += folderBytes(dir);
    rmSync(dir, { recursive: true, force: true });
    removed = true;
  }
  return { removed, bytes };
}

export function folderBytes(dir: string): number {
  let total = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const n of names) {
    const p = join(dir, n);
    const st = statSync(p, { throwIfNoEntry: false });
    if (!st) continue;
    total += st.isDirectory() ? folderBytes(p) : st.size;
  }
  return total;
}

function checkDiskSpace(entry: HubEntry, cacheDir: string, tmpDir: string): void {
  const known = entry.files.every((f) => f.size !== null) ? entry.files.reduce((n, f) => n + f.size!, 0) : entry.approxBytes;
  if (!known) return;
  const needed = known - folderBytes(tmpDir);
  let free: number;
  try {
    const fs = statfsSync(cacheDir);
    free = fs.bavail * fs.bsize;
  } catch {
    return;
  }
  if (needed > free) {
    const gb = (n: number) => `${(n / 1e9).toFixed(1)} GB`;
    throw new CtxError('io', `not enough disk space for "${entry.name}": about ${gb(needed)} still to download, ${gb(free)} free (set CTX_CACHE_DIR to a bigger disk)`, { path: cacheDir });
  }
}

function report(state: PullState, i: number, fileDone: number, resumedFrom?: number): void {
  if (!state.opts.onProgress) return;
  state.doneBefore[i] = fileDone;
  const total = state.sizes.every((s) => s !== null) ? state.sizes.reduce((n: number, s) => n + s!, 0) : null;
  state.opts.onProgress({
    file: state.entry.files[i].path,
    fileIndex: i,
    fileCount: state.entry.files.length,
    fileDone,
    fileTotal: state.sizes[i],
    done: state.doneBefore.reduce((n, d) => n + d, 0),
    total,
    ...(resumedFrom !== undefined ? { resumedFrom } : {}),
  });
}

/** Downloads file i into tmpDir, with retries; null when an optional file does not exist. */
async function downloadFile(state: PullState, i: number, tmpDir: string): Promise<DownloadRecord['files'][number] | null> {
  const file = state.entry.files[i];
  const dest = join(tmpDir, file.path);
  const verifiedPath = `${dest}.ctx-verified`;
  if (existsSync(dest) && existsSync(verifiedPath)) {
    // Finished and checked by an earlier, interrupted pull.
    const done = JSON.parse(readFileSync(verifiedPath, 'utf8')) as DownloadRecord['files'][number];
    state.sizes[i] = done.size;
    report(state, i, done.size);
    return done;
  }
  mkdirSync(dirname(dest), { recursive: true });
  const retries = state.opts.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    try {
      const got = await fetchToPart(state, i, `${dest}.part`);
      if (!got) return null;
      await rename(`${dest}.part`, dest);
      writeFileSync(verifiedPath, JSON.stringify(got));
      return got;
    } catch (e) {
      if (state.opts.signal?.aborted) {
        throw new CtxError('interrupted', `download of "${state.entry.name}" interrupted; run the same command again to resume`);
      }
      if (e instanceof RetryableError && attempt < retries) {
        await new Promise((r) => setTimeout(r, Math.min(8000, 500 * 2 ** attempt)));
        continue;
      }
      if (e instanceof RetryableError) {
        throw new CtxError('download', `${file.path}: ${e.message} (gave up after ${retries + 1} attempts; run the same command again to resume)`);
      }
      throw e;
    }
  }
}

/**
 * One HTTP attempt for file i into its .part file, resuming from the bytes already there.
 * Returns what was written, or null for a missing optional file. Throws RetryableError for a dropped
 * or stalled connection and CtxError for everything that another attempt would not fix.
 */
async function fetchToPart(state: PullState, i: number, part: string): Promise<DownloadRecord['files'][number] | null> {
  const { entry, endpoint } = state;
  const file: RegistryFile = entry.files[i];
  const url = fileUrl(endpoint, entry.hub, entry.revision, file.path);

  let have = (await stat(part).catch(() => null))?.size ?? 0;
  if (file.size !== null && have > file.size) {
    await truncate(part, 0);
    have = 0;
  }

  const idle = new AbortController();
  const idleMs = state.opts.idleTimeoutMs ?? 60_000;
  let idleTimer = setTimeout(() => idle.abort(), idleMs);
  const resetIdle = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => idle.abort(), idleMs);
  };
  const signal = state.opts.signal ? AbortSignal.any([state.opts.signal, idle.signal]) : idle.signal;

  try {
    const { res, hubSha256, hubSize } = await request(state, url, have, signal);
    if (res.status === 404) {
      await res.body?.cancel();
      if (file.optional) {
        state.sizes[i] = 0;
        report(state, i, 0);
        return null;
      }
      throw new CtxError('download', `${file.path} is not in ${entry.hub} at revision ${entry.revision} (HTTP 404 from ${url})`);
    }
    if (res.status === 416 && have > 0) {
      // Nothing after what we have. If that is the whole file (a pull stopped between its last byte
      // and the rename), check it; otherwise the part is wrong: start the file over.
      await res.body?.cancel();
      const fullSize = /^bytes \*\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1];
      if (fullSize !== undefined && Number(fullSize) === have && (file.size === null || file.size === have)) {
        state.sizes[i] = have;
        report(state, i, have, have);
        return await checkPart(part, file, have, hubSha256);
      }
      await truncate(part, 0);
      return await fetchToPart(state, i, part);
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      const how = entry.gated
        ? `accept the license on ${endpoint}/${entry.hub} with your account, then set HF_TOKEN to a token of that account`
        : 'set HF_TOKEN to a token that may read it';
      throw new CtxError('download', `the hub refused ${file.path} of ${entry.hub} (HTTP ${res.status}${state.token ? ', with HF_TOKEN' : ', no HF_TOKEN set'}): ${how}`);
    }
    if (res.status >= 500 || res.status === 429) {
      await res.body?.cancel();
      throw new RetryableError(`HTTP ${res.status} from the server`);
    }
    if (res.status !== 200 && res.status !== 206) {
      await res.body?.cancel();
      throw new CtxError('download', `${file.path}: HTTP ${res.status} from ${url}`);
    }

    // 206 continues our part; 200 means the server ignored Range (or we asked for none): start over.
    let start = 0;
    let total: number | null = null;
    if (res.status === 206) {
      const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
      if (!m || Number(m[1]) !== have) {
        // Not the continuation we asked for: start the file over rather than guess.
        await res.body?.cancel();
        await truncate(part, 0);
        return await fetchToPart(state, i, part);
      }
      start = have;
      total = m[3] === '*' ? null : Number(m[3]);
    } else {
      const length = res.headers.get('content-length');
      total = length !== null ? Number(length) : null;
    }
    const expectedSize = file.size ?? hubSize ?? total;
    const expectedSha = file.sha256 ?? hubSha256;
    if (file.size !== null && total !== null && total !== file.size) {
      await res.body?.cancel();
      throw new CtxError('download', `${file.path}: the server offers ${total} bytes, the registry expects ${file.size}`);
    }
    state.sizes[i] = expectedSize;

    // The digest covers the whole file, so a resumed download first hashes what is already there.
    const hash = createHash('sha256');
    if (start > 0) {
      for await (const chunk of createReadStream(part, { start: 0, end: start - 1 })) hash.update(chunk as Buffer);
    }
    let fh;
    try {
      fh = await open(part, start > 0 ? 'a' : 'w');
    } catch (e) {
      throw fsError(e, part, 'io');
    }
    let written = start;
    report(state, i, written, start > 0 ? start : undefined);
    try {
      if (!res.body) throw new RetryableError('empty response');
      const reader = res.body.getReader();
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch {
          // The bytes written so far stay in the .part file for the next attempt.
          throw new RetryableError(
            idle.signal.aborted ? `no data for ${Math.round(idleMs / 1000)} s` : `connection lost after ${written} of ${expectedSize ?? '?'} bytes`,
          );
        }
        if (chunk.done) break;
        resetIdle();
        try {
          await fh.write(chunk.value);
        } catch (e) {
          throw fsError(e, part, 'io');
        }
        hash.update(chunk.value);
        written += chunk.value.length;
        if (expectedSize !== null && written > expectedSize) {
          await rm(part, { force: true });
          throw new CtxError('download', `${file.path}: the server sent more than the expected ${expectedSize} bytes; the partial file was deleted`);
        }
        report(state, i, written);
      }
      await fh.datasync();
    } finally {
      await fh.close().catch(() => {});
    }

    if (expectedSize !== null && written < expectedSize) {
      throw new RetryableError(`connection ended after ${written} of ${expectedSize} bytes`);
    }
    return await verify(part, file, written, hash.digest('hex'), hubSha256);
  } catch (e) {
    if (e instanceof CtxError || e instanceof RetryableError) throw e;
    if (state.opts.signal?.aborted) throw e;
    // A local file operation (stat, truncate, rename) failed: a disk problem, not the network.
    if (typeof (e as NodeJS.ErrnoException).syscall === 'string' && !(e as { cause?: unknown }).cause) throw fsError(e, part, 'io');
    const code = causeCode(e);
    if (code && UNREACHABLE.has(code)) throw unreachableError(entry, endpoint, code);
    throw new RetryableError(idle.signal.aborted ? `no answer for ${Math.round(idleMs / 1000)} s` : `network error (${code ?? (e as Error).message})`);
  } finally {
    clearTimeout(idleTimer);
  }
}

/** Compares a finished part with the expected sha256 (registry first, else the hub's); a mismatch deletes it. */
async function verify(part: string, file: RegistryFile, size: number, digest: string, hubSha256: string | null): Promise<DownloadRecord['files'][number]> {
  const expected = file.sha256 ?? hubSha256;
  if (expected && digest !== expected) {
    await rm(part, { force: true });
    throw new CtxError(
      'download',
      `${file.path}: checksum mismatch: expected sha256 ${expected}${file.sha256 ? '' : ' (from the hub)'}, got ${digest}; the partial file was deleted`,
    );
  }
  return { path: file.path, size, sha256: digest, checkedAgainst: file.sha256 ? 'registry' : hubSha256 ? 'hub' : 'none' };
}

/** Hashes a part that is already complete, then verifies it. */
async function checkPart(part: string, file: RegistryFile, size: number, hubSha256: string | null): Promise<DownloadRecord['files'][number]> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(part)) hash.update(chunk as Buffer);
  return verify(part, file, size, hash.digest('hex'), hubSha256);
}

/**
 * GET with Range and Authorization, following redirects by hand so that the token goes only to the
 * hub itself and never to the storage host it redirects to. The hub's first answer for an LFS file
 * carries the file's sha256 and size (X-Linked-Etag, X-Linked-Size), which are kept for checking.
 */
async function request(
  state: PullState,
  url: string,
  have: number,
  signal: AbortSignal,
): Promise<{ res: Response; hubSha256: string | null; hubSize: number | null }> {
  const origin = new URL(url).origin;
  let hubSha256: string | null = null;
  let hubSize: number | null = null;
  let current = url;
  for (let hop = 0; hop < 10; hop++) {
    const headers: Record<string, string> = { 'user-agent': 'ctx' };
    if (have > 0) headers.range = `bytes=${have}-`;
    if (state.token && new URL(current).origin === origin) headers.authorization = `Bearer ${state.token}`;
    const res = await fetch(current, { headers, redirect: 'manual', signal });
    const etag = (res.headers.get('x-linked-etag') ?? '').replace(/^W\//, '').replace(/"/g, '');
    if (/^[0-9a-f]{64}$/.test(etag)) hubSha256 ??= etag;
    const linkedSize = res.headers.get('x-linked-size');
    if (linkedSize && /^\d+$/.test(linkedSize)) hubSize ??= Number(linkedSize);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      await res.body?.cancel();
      current = new URL(location, current).href;
      continue;
    }
    return { res, hubSha256, hubSize };
  }
  throw new CtxError('download', `too many redirects for ${url}`);
}
