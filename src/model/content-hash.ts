// The SHA-256 of a model file, computed once and remembered by the file's identity. The weights'
// identity keys the converted-weights cache and the session cache, so it must not be fooled: the
// fingerprint it replaces (the header plus 16 sampled 64 KiB blocks) let a model that differed
// elsewhere reuse another model's converted weights and sessions. A full hash of a multi-GB file
// takes seconds (measured below), so it is remembered under
//
//   <cache>/file-hashes/<dev>-<inode>.json    { size, mtimeNs, ctimeNs, sha256 }   (0600)
//
// and reused while the file's device, inode, size, modification and change times are all the same.
// The change time (ctime) cannot be set back by anyone but the clock, so a rewritten file is hashed
// again even when its size and mtime were forged. Downloads record the hash they already verified
// (rememberSha256), so a freshly pulled model costs nothing here.
//
// Measured with bench/model/content-hash.ts on a 4 GiB file of random bytes in /tmp (in the page
// cache), on the project's 2-core machine while shared (load average 10): first use 11.8–14.1 s
// (0.28–0.34 GiB/s, two runs), remembered 1–5 ms. So a 3 GB model costs about 10 s once, on its first
// use after it changed or appeared (never after `ctx models pull`), and nothing after that.

import { createHash } from 'node:crypto';
import { readFileSync, renameSync, rmSync, statSync, writeFileSync, type BigIntStats } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ctxCacheDir, makePrivateDir } from './paths.js';

interface Remembered {
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  sha256: string;
}

const CHUNK = 8 * 1024 * 1024;

function memoPath(st: BigIntStats, cacheDir: string): string {
  return join(cacheDir, 'file-hashes', `${st.dev}-${st.ino}.json`);
}

function identity(st: BigIntStats): Omit<Remembered, 'sha256'> {
  return { size: String(st.size), mtimeNs: String(st.mtimeNs), ctimeNs: String(st.ctimeNs) };
}

function sameFile(a: Omit<Remembered, 'sha256'>, b: Omit<Remembered, 'sha256'>): boolean {
  return a.size === b.size && a.mtimeNs === b.mtimeNs && a.ctimeNs === b.ctimeNs;
}

function recall(st: BigIntStats, cacheDir: string): string | null {
  try {
    const r = JSON.parse(readFileSync(memoPath(st, cacheDir), 'utf8')) as Remembered;
    return sameFile(r, identity(st)) && /^[0-9a-f]{64}$/.test(r.sha256) ? r.sha256 : null;
  } catch {
    return null;
  }
}

function remember(st: BigIntStats, sha256: string, cacheDir: string): void {
  const path = memoPath(st, cacheDir);
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    makePrivateDir(join(cacheDir, 'file-hashes'));
    writeFileSync(tmp, JSON.stringify({ ...identity(st), sha256 } satisfies Remembered), { mode: 0o600 });
    renameSync(tmp, path);
  } catch {
    // A cache that cannot be written only means hashing again next time.
    rmSync(tmp, { force: true });
  }
}

/**
 * The SHA-256 (hex) of the file at `path`: remembered, or computed now, 8 MiB at a time with the
 * event loop free in between (about 25 ms each), so Ctrl-C and SIGTERM are heard at once and
 * `signal` stops it. Throws fs errors.
 */
export async function fileSha256(path: string, o: { cacheDir?: string; signal?: AbortSignal } = {}): Promise<string> {
  const cacheDir = o.cacheDir ?? ctxCacheDir();
  const before = await stat(path, { bigint: true });
  const known = recall(before, cacheDir);
  if (known) return known;
  const file = await open(path, 'r');
  let sha256: string;
  try {
    // Two buffers: the next chunk is read (by libuv's threads) while this one is hashed.
    const hash = createHash('sha256');
    const buffers = [Buffer.allocUnsafe(CHUNK), Buffer.allocUnsafe(CHUNK)];
    let next = file.read(buffers[0]!, 0, CHUNK, null);
    for (let k = 1; ; k++) {
      const { bytesRead, buffer } = await next;
      o.signal?.throwIfAborted();
      if (bytesRead === 0) break;
      next = file.read(buffers[k % 2]!, 0, CHUNK, null);
      hash.update(buffer.subarray(0, bytesRead));
    }
    sha256 = hash.digest('hex');
  } finally {
    await file.close();
  }
  // Remember it only if the file did not change while it was read.
  const after = await stat(path, { bigint: true });
  if (after.dev === before.dev && after.ino === before.ino && sameFile(identity(after), identity(before))) remember(after, sha256, cacheDir);
  return sha256;
}

/** Records a hash already computed and checked (a download), for the file as it is now. */
export function rememberSha256(path: string, sha256: string, cacheDir: string = ctxCacheDir()): void {
  try {
    remember(statSync(path, { bigint: true }), sha256, cacheDir);
  } catch {
    // nothing remembered: it will be hashed on first use
  }
}
