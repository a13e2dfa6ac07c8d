// Downloads a registry model from the Hugging Face hub (or a mirror) into the cache. The parts:
//   download/folder.ts   the download folders: a model appears under its name only once complete
//   download/http.ts     one file over HTTP: resume, redirects without the token, checksums, retries

import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { CtxError, fsError } from '../errors.js';
import { checkDiskSpace, claimTmpDir, folderBytes, MARKER, readDownloadRecord, type DownloadRecord } from './download/folder.js';
import { downloadFile, hubEndpoint, type PullState } from './download/http.js';
import { parseByteSize } from '../units.js';
import { makePrivateDir, modelsCacheDir } from './paths.js';
import type { HubEntry } from './registry.js';

export { folderBytes, MARKER, readDownloadRecord, type DownloadRecord } from './download/folder.js';
export { removeDownload } from './download/folder.js';
export { fileUrl, hubEndpoint } from './download/http.js';

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
  /**
   * Drop a connection slower than this many bytes per second over `speedWindowMs` (default: the
   * environment's CTX_DOWNLOAD_MIN_SPEED, e.g. "10K", else 1 KiB/s over 60 s). It counts as an attempt.
   */
  minBytesPerSecond?: number;
  speedWindowMs?: number;
  /**
   * The most a file may grow to when neither the registry nor the server says its size (default:
   * CTX_DOWNLOAD_MAX_BYTES, else twice the model's approximate size, else 64 GiB).
   */
  maxUnknownBytes?: number;
}

/** A size from an environment variable, or undefined when unset; a bad value is a usage error naming it. */
function envSize(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const text = env[name];
  if (text === undefined || text === '') return undefined;
  const n = parseByteSize(text);
  if (n === undefined || n <= 0) throw new CtxError('usage', `${name}=${text} is not a size (use e.g. 10K, 512M or 4G)`);
  return n;
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
    makePrivateDir(cacheDir);
  } catch (e) {
    throw fsError(e, cacheDir, 'io');
  }
  const tmpDir = claimTmpDir(cacheDir, entry.name);
  checkDiskSpace(entry, cacheDir, tmpDir);

  const doneBefore = entry.files.map(() => 0);
  const state: PullState = {
    entry,
    endpoint: hubEndpoint(env),
    token: env.HF_TOKEN || undefined,
    sizes: entry.files.map((f) => f.size),
    signal: opts.signal,
    retries: opts.retries ?? 3,
    idleTimeoutMs: opts.idleTimeoutMs ?? 60_000,
    minBytesPerSecond: opts.minBytesPerSecond ?? envSize(env, 'CTX_DOWNLOAD_MIN_SPEED') ?? 1024,
    speedWindowMs: opts.speedWindowMs ?? 60_000,
    cacheRoot: dirname(cacheDir),
    maxUnknownBytes: opts.maxUnknownBytes ?? envSize(env, 'CTX_DOWNLOAD_MAX_BYTES') ?? (entry.approxBytes ? 2 * entry.approxBytes : 64 * 1024 ** 3),
    report: (i, fileDone, resumedFrom) => {
      if (!opts.onProgress) return;
      doneBefore[i] = fileDone;
      const total = state.sizes.every((s) => s !== null) ? state.sizes.reduce((n: number, s) => n + s!, 0) : null;
      opts.onProgress({
        file: entry.files[i].path,
        fileIndex: i,
        fileCount: entry.files.length,
        fileDone,
        fileTotal: state.sizes[i],
        done: doneBefore.reduce((n, d) => n + d, 0),
        total,
        ...(resumedFrom !== undefined ? { resumedFrom } : {}),
      });
    },
  };
  const record: DownloadRecord = { name: entry.name, hub: entry.hub, revision: entry.revision, endpoint: state.endpoint, downloadedAt: '', files: [] };
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
  writeFileSync(join(tmpDir, MARKER), JSON.stringify(record, null, 2) + '\n', { mode: 0o600 });
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
