// The HTTP side of a model download: one file from the hub (or a mirror) into its ".part" file,
// resumed with a Range request from the bytes already there, redirects followed by hand so that
// HF_TOKEN goes only to the hub and never to the storage host, and every file checked against the
// size and sha256 the registry knows, or else the ones the hub advertises for LFS files
// (X-Linked-Size / X-Linked-Etag). downloadFile retries a dropped connection, resuming each time.

import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { open, rename, rm, stat, truncate } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { CtxError, fsError } from '../../errors.js';
import type { HubEntry, RegistryFile } from '../registry.js';
import type { DownloadedFile } from './folder.js';

export function hubEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return (env.CTX_HF_ENDPOINT || env.HF_ENDPOINT || 'https://huggingface.co').replace(/\/+$/, '');
}

export function fileUrl(endpoint: string, repo: string, revision: string, path: string): string {
  const enc = (s: string) => s.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${enc(repo)}/resolve/${encodeURIComponent(revision)}/${enc(path)}`;
}

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

/** What a pull shares between its files. */
export interface PullState {
  entry: HubEntry;
  endpoint: string;
  token: string | undefined;
  /** Sizes as learned (registry first, then the server), for progress totals. */
  sizes: (number | null)[];
  signal?: AbortSignal;
  retries: number;
  idleTimeoutMs: number;
  /** Tells progress: file i, its bytes on disk, and where a resumed file started. */
  report: (i: number, fileDone: number, resumedFrom?: number) => void;
}

/** Downloads file i into tmpDir, with retries; null when an optional file does not exist. */
export async function downloadFile(state: PullState, i: number, tmpDir: string): Promise<DownloadedFile | null> {
  const file = state.entry.files[i];
  const dest = join(tmpDir, file.path);
  const verifiedPath = `${dest}.ctx-verified`;
  if (existsSync(dest) && existsSync(verifiedPath)) {
    // Finished and checked by an earlier, interrupted pull.
    const done = JSON.parse(readFileSync(verifiedPath, 'utf8')) as DownloadedFile;
    state.sizes[i] = done.size;
    state.report(i, done.size);
    return done;
  }
  mkdirSync(dirname(dest), { recursive: true });
  const retries = state.retries;
  for (let attempt = 0; ; attempt++) {
    try {
      const got = await fetchToPart(state, i, `${dest}.part`);
      if (!got) return null;
      await rename(`${dest}.part`, dest);
      writeFileSync(verifiedPath, JSON.stringify(got));
      return got;
    } catch (e) {
      if (state.signal?.aborted) {
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
async function fetchToPart(state: PullState, i: number, part: string): Promise<DownloadedFile | null> {
  const { entry, endpoint } = state;
  const file: RegistryFile = entry.files[i];
  const url = fileUrl(endpoint, entry.hub, entry.revision, file.path);

  let have = (await stat(part).catch(() => null))?.size ?? 0;
  if (file.size !== null && have > file.size) {
    await truncate(part, 0);
    have = 0;
  }

  const idle = new AbortController();
  const idleMs = state.idleTimeoutMs;
  let idleTimer = setTimeout(() => idle.abort(), idleMs);
  const resetIdle = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => idle.abort(), idleMs);
  };
  const signal = state.signal ? AbortSignal.any([state.signal, idle.signal]) : idle.signal;

  try {
    const { res, hubSha256, hubSize } = await request(state, url, have, signal);
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
      // and the rename), check it; otherwise the part is wrong: start the file over.
      await res.body?.cancel();
      const fullSize = /^bytes \*\/(\d+)$/.exec(res.headers.get('content-range') ?? '')?.[1];
      if (fullSize !== undefined && Number(fullSize) === have && (file.size === null || file.size === have)) {
        state.sizes[i] = have;
        state.report(i, have, have);
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
        state.report(i, written);
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
    if (state.signal?.aborted) throw e;
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
