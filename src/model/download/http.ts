// The HTTP side of a model download: one file from the hub (or a mirror) into its ".part" file,
// resumed with a Range request from the bytes already there, redirects followed by hand so that
// HF_TOKEN goes only to the hub and never to the storage host, and every file checked against the
// size and sha256 the registry knows, or else the ones the hub advertises for LFS files
// (X-Linked-Size / X-Linked-Etag).
//
// The server is not trusted to behave. Every way an attempt can fail without a final answer (a
// dropped or stalled connection, a 5xx, a Content-Range that does not continue the file) counts
// against one bounded number of attempts; a connection slower than a minimum speed is dropped; a
// file of unknown size may not grow past a cap; and whatever the server does is reported as a
// download failure (exit 6). Only a local file operation that fails is a write failure (exit 8).

import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { mkdir, open, rename, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CtxError, fsError } from '../../errors.js';
import { formatBytes } from '../../units.js';
import type { HubEntry, RegistryFile } from '../registry.js';
import { rememberSha256 } from '../content-hash.js';
import type { DownloadedFile } from './folder.js';

export function hubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env.CTX_HF_ENDPOINT || env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
}

export function fileUrl(endpoint: string, repo: string, revision: string, path: string): string {
  const enc = (s: string) => s.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${enc(repo)}/resolve/${encodeURIComponent(revision)}/${enc(path)}`;
}

/** A failure worth another attempt; the .part file stays (or was reset) for the next one. */
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

/** A local file operation; its failure is the disk's (exit 8), never the server's. */
async function local<T>(path: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (e) {
    throw fsError(e, path, 'io');
  }
}

/** Starts a file over: its part goes (there may be none yet: a server can misanswer the first request). */
async function resetPart(part: string): Promise<void> {
  await local(part, () => rm(part, { force: true }));
}

/** What a pull shares between its files. */
export interface PullState {
  entry: HubEntry;
  endpoint: string;
  token: string | undefined;
  /** Sizes as learned (registry first, then the server), for progress totals. */
  sizes: (number | null)[];
  signal?: AbortSignal;
  /** Attempts after the first, per file, whatever made them necessary. */
  retries: number;
  /** Drop a connection that delivers nothing for this long. */
  idleTimeoutMs: number;
  /** Drop a connection that delivers less than this many bytes per second, measured over `speedWindowMs`. */
  minBytesPerSecond: number;
  speedWindowMs: number;
  /** The most a file of unknown size may grow to. */
  maxUnknownBytes: number;
  /** Tells progress: file i, its bytes on disk, and where a resumed file started. */
  report: (i: number, fileDone: number, resumedFrom?: number) => void;
  /** The ctx cache folder, where verified hashes are remembered (content-hash.ts). */
  cacheRoot: string;
}

/** Downloads file i into tmpDir, with retries; null when an optional file does not exist. */
export async function downloadFile(state: PullState, i: number, tmpDir: string): Promise<DownloadedFile | null> {
  const file = state.entry.files[i];
  const dest = join(tmpDir, file.path);
  const part = `${dest}.part`;
  const verifiedPath = `${dest}.ctx-verified`;
  const earlier = existsSync(dest) ? readVerified(verifiedPath) : null;
  if (earlier) {
    // Finished and checked by an earlier, interrupted pull.
    state.sizes[i] = earlier.size;
    state.report(i, earlier.size);
    return earlier;
  }
  await local(dirname(dest), () => mkdir(dirname(dest), { recursive: true, mode: 0o700 }));
  for (let attempt = 0; ; attempt++) {
    try {
      const got = await fetchToPart(state, i, part);
      if (!got) return null;
      await local(dest, () => rename(part, dest));
      await local(verifiedPath, () => writeFile(verifiedPath, JSON.stringify(got), { mode: 0o600 }));
      // The file's identity is now final (renaming its folder later does not change it): its hash,
      // just computed, is remembered so that first use does not hash it again.
      rememberSha256(dest, got.sha256, state.cacheRoot);
      return got;
    } catch (e) {
      if (state.signal?.aborted) {
        throw new CtxError('interrupted', `download of "${state.entry.name}" interrupted; run the same command again to resume`);
      }
      if (!(e instanceof RetryableError)) throw e;
      if (attempt >= state.retries) {
        throw new CtxError('download', `${file.path}: ${e.message} (gave up after ${attempt + 1} attempts; run the same command again to resume)`);
      }
      await new Promise((r) => setTimeout(r, Math.min(8000, 500 * 2 ** attempt)));
    }
  }
}

/** The note an earlier pull left beside a verified file, or null when there is none or it is damaged. */
function readVerified(path: string): DownloadedFile | null {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as DownloadedFile;
    return typeof v.size === 'number' && typeof v.sha256 === 'string' ? v : null;
  } catch {
    return null;
  }
}

/**
 * One HTTP attempt for file i into its .part file, resuming from the bytes already there.
 * Returns what was written, or null for a missing optional file. Throws RetryableError for anything
 * another attempt may fix and CtxError for everything else.
 */
async function fetchToPart(state: PullState, i: number, part: string): Promise<DownloadedFile | null> {
  const { entry, endpoint } = state;
  const file: RegistryFile = entry.files[i];
  const url = fileUrl(endpoint, entry.hub, entry.revision, file.path);

  let have = (await stat(part).catch(() => null))?.size ?? 0;
  if (file.size !== null && have > file.size) {
    await resetPart(part);
    have = 0;
  }

  // The connection is dropped when it is idle, or too slow over a whole window (a trickle of one
  // byte every few seconds would keep an idle timer alive forever).
  const stall = new AbortController();
  let stallReason = '';
  const drop = (reason: string) => {
    stallReason = reason;
    stall.abort();
  };
  let idleTimer = setTimeout(() => drop(`no data for ${seconds(state.idleTimeoutMs)}`), state.idleTimeoutMs);
  let windowBytes = 0;
  const speedTimer = setInterval(() => {
    if (windowBytes < (state.minBytesPerSecond * state.speedWindowMs) / 1000) {
      drop(`slower than ${formatBytes(state.minBytesPerSecond)}/s for ${seconds(state.speedWindowMs)} (CTX_DOWNLOAD_MIN_SPEED)`);
    }
    windowBytes = 0;
  }, state.speedWindowMs);
  const gotData = (n: number) => {
    windowBytes += n;
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => drop(`no data for ${seconds(state.idleTimeoutMs)}`), state.idleTimeoutMs);
  };
  const signal = state.signal ? AbortSignal.any([state.signal, stall.signal]) : stall.signal;

  try {
    let res: Response;
    let hubSha256: string | null;
    let hubSize: number | null;
    try {
      ({ res, hubSha256, hubSize } = await request(state, url, have, signal));
    } catch (e) {
      if (e instanceof CtxError || state.signal?.aborted) throw e;
      const code = causeCode(e);
      if (code && UNREACHABLE.has(code)) throw unreachableError(entry, endpoint, code);
      throw new RetryableError(stall.signal.aborted ? stallReason : `network error (${code ?? (e as Error).message})`);
    }

    if (res.status === 404) {
      await res.body?.cancel();
      if (file.optional) {
        state.sizes[i] = 0;
        state.report(i, 0);
        return null;
      }
      throw new CtxError('download', `${file.path} is not in ${entry.hub} at revision ${entry.revision} (HTTP 404 from ${url})`);
    }
    if (res.status === 416 && have > 0) {
      // Nothing after what we have. If that is the whole file (a pull stopped between its last byte
      // and the rename), check it; otherwise the part is wrong: the next attempt starts the file over.
      await res.body?.cancel();
      const fullSize = /^bytes \*\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1];
      if (fullSize !== undefined && Number(fullSize) === have && (file.size === null || file.size === have)) {
        state.sizes[i] = have;
        state.report(i, have, have);
        return await checkPart(part, file, have, hubSha256);
      }
      await resetPart(part);
      throw new RetryableError(`the server refused to continue the file at byte ${have} (HTTP 416); starting it over`);
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
        // Not the continuation we asked for: the next attempt starts the file over rather than guess.
        await res.body?.cancel();
        await resetPart(part);
        throw new RetryableError(`the server answered a request for byte ${have} on with "Content-Range: ${res.headers.get('content-range') ?? ''}"; starting the file over`);
      }
      start = have;
      total = m[3] === '*' ? null : Number(m[3]);
    } else {
      const length = res.headers.get('content-length');
      total = length !== null && /^\d+$/.test(length) ? Number(length) : null;
    }
    const expectedSize = file.size ?? hubSize ?? total;
    if (file.size !== null && total !== null && total !== file.size) {
      await res.body?.cancel();
      throw new CtxError('download', `${file.path}: the server offers ${total} bytes, the registry expects ${file.size}`);
    }
    state.sizes[i] = expectedSize;
    const limit = expectedSize ?? state.maxUnknownBytes;

    // The digest covers the whole file, so a resumed download first hashes what is already there.
    const hash = createHash('sha256');
    if (start > 0) {
      await local(part, async () => {
        for await (const chunk of createReadStream(part, { start: 0, end: start - 1 })) hash.update(chunk as Buffer);
      });
    }
    const fh: FileHandle = await local(part, () => open(part, start > 0 ? 'a' : 'w', 0o600));
    let written = start;
    state.report(i, written, start > 0 ? start : undefined);
    try {
      if (!res.body) throw new RetryableError('empty response');
      const reader = res.body.getReader();
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch {
          // The bytes written so far stay in the .part file for the next attempt.
          if (state.signal?.aborted) throw state.signal.reason;
          throw new RetryableError(stall.signal.aborted ? stallReason : `connection lost after ${written} of ${expectedSize ?? '?'} bytes`);
        }
        if (chunk.done) break;
        gotData(chunk.value.length);
        if (written + chunk.value.length > limit) {
          await reader.cancel().catch(() => {});
          await rm(part, { force: true });
          const what = expectedSize !== null ? `the expected ${expectedSize} bytes` : `${formatBytes(limit)}, the cap for a file whose size the server does not say (CTX_DOWNLOAD_MAX_BYTES)`;
          throw new CtxError('download', `${file.path}: the server sent more than ${what}; the partial file was deleted`);
        }
        await local(part, () => fh.write(chunk.value));
        hash.update(chunk.value);
        written += chunk.value.length;
        state.report(i, written);
      }
      await local(part, () => fh.datasync());
    } finally {
      await fh.close().catch(() => {});
    }

    if (expectedSize !== null && written < expectedSize) {
      throw new RetryableError(`connection ended after ${written} of ${expectedSize} bytes`);
    }
    return await verify(part, file, written, hash.digest('hex'), hubSha256);
  } finally {
    clearTimeout(idleTimer);
    clearInterval(speedTimer);
  }
}

function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 1000)} s`;
}

/** Compares a finished part with the expected sha256 (registry first, else the hub's); a mismatch deletes it. */
async function verify(part: string, file: RegistryFile, size: number, digest: string, hubSha256: string | null): Promise<DownloadedFile> {
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
async function checkPart(part: string, file: RegistryFile, size: number, hubSha256: string | null): Promise<DownloadedFile> {
  const hash = createHash('sha256');
  await local(part, async () => {
    for await (const chunk of createReadStream(part)) hash.update(chunk as Buffer);
  });
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
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new CtxError('download', `the server redirected ${url} to an invalid address (${location.slice(0, 200)})`);
      }
      if (next.protocol !== 'https:' && next.protocol !== 'http:') {
        throw new CtxError('download', `the server redirected ${url} to a ${next.protocol} address; ctx follows only http(s)`);
      }
      current = next.href;
      continue;
    }
    return { res, hubSha256, hubSize };
  }
  throw new CtxError('download', `too many redirects for ${url}`);
}
