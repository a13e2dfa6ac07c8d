// The download folders of the models cache:
//
//   <cache>/models/.tmp-<name>-<pid>/          while downloading; a file in progress is "<file>.part"
//   <cache>/models/<name>/                      only ever created by renaming a finished .tmp folder
//   <cache>/models/<name>/.ctx-model.json       what was downloaded (repo, revision, sizes, sha256)
//
// So a folder under its final name is always complete. An interrupted pull leaves its .tmp folder;
// the next pull adopts it (once its process is gone) and resumes each .part file.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CtxError } from '../../errors.js';
import type { HubEntry } from '../registry.js';

export const MARKER = '.ctx-model.json';

/** What `.ctx-model.json` records. */
export interface DownloadRecord {
  name: string;
  hub: string;
  revision: string;
  endpoint: string;
  downloadedAt: string;
  files: DownloadedFile[];
}

export interface DownloadedFile {
  path: string;
  size: number;
  sha256: string;
  checkedAgainst: 'registry' | 'hub' | 'none';
}

/** The marker of a finished download, or null when `dir` is not one. */
export function readDownloadRecord(dir: string): DownloadRecord | null {
  try {
    return JSON.parse(readFileSync(join(dir, MARKER), 'utf8')) as DownloadRecord;
  } catch {
    return null;
  }
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
export function claimTmpDir(cacheDir: string, name: string): string {
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
export function removeDownload(name: string, cacheDir: string): { removed: boolean; bytes: number } {
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

/** Refuses a pull that cannot fit on the disk, with the numbers. */
export function checkDiskSpace(entry: HubEntry, cacheDir: string, tmpDir: string): void {
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
