// The download folders of the models cache:
//
//   <cache>/models/.tmp-<name>-<owner>/        while downloading; a file in progress is "<file>.part";
//                                               <owner> is the pid and start time of the pull (owner.ts)
//   <cache>/models/<name>/                      only ever created by renaming a finished .tmp folder
//   <cache>/models/<name>/.ctx-model.json       what was downloaded (repo, revision, sizes, sha256)
//
// So a folder under its final name is always complete. An interrupted pull leaves its .tmp folder;
// the next pull adopts it (once its process is gone) and resumes each .part file. Folders and files
// are private to the user (0700/0600).

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statfsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CtxError, fsError } from '../../errors.js';
import { formatBytes } from '../../units.js';
import { isRunning, ownerTag, parseTag, type Owner } from '../owner.js';
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

/** A download folder left by a ctx too old to record its start time: its pid alone is trusted this long after its last write. */
const LEGACY_IDLE_MS = 10 * 60 * 1000;

interface TmpDir {
  dir: string;
  owner: Owner;
}

function tmpDirsOf(cacheDir: string, name: string): TmpDir[] {
  const prefix = `.tmp-${name}-`;
  let names: string[];
  try {
    names = readdirSync(cacheDir);
  } catch {
    return [];
  }
  const out: TmpDir[] = [];
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const owner = parseTag(n.slice(prefix.length));
    if (owner) out.push({ dir: join(cacheDir, n), owner });
  }
  return out;
}

/** Whether the pull that owns `t` is still running. */
function inUse(t: TmpDir): boolean {
  if (t.owner.start !== null) return isRunning(t.owner);
  // pid only: that pid may now be another program; a pull writes often, so an idle folder is stale.
  return isRunning(t.owner) && Date.now() - lastWrite(t.dir) < LEGACY_IDLE_MS;
}

function lastWrite(dir: string): number {
  let latest = statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    // unreadable: its own mtime will do
  }
  for (const n of names) latest = Math.max(latest, statSync(join(dir, n), { throwIfNoEntry: false })?.mtimeMs ?? 0);
  return latest;
}

/**
 * This process's download folder. A folder left by a pull whose process has ended is taken over, so
 * its partial files resume; one whose process is still running means two pulls of the same model.
 */
export function claimTmpDir(cacheDir: string, name: string): string {
  const mine = join(cacheDir, `.tmp-${name}-${ownerTag()}`);
  for (const t of tmpDirsOf(cacheDir, name)) {
    if (t.dir === mine) continue;
    if (inUse(t)) throw new CtxError('download', `another ctx (pid ${t.owner.pid}) is downloading "${name}"; wait for it to finish or stop it`);
    try {
      if (!existsSync(mine)) renameSync(t.dir, mine);
      else rmSync(t.dir, { recursive: true, force: true });
    } catch (e) {
      throw fsError(e, t.dir, 'io');
    }
  }
  try {
    mkdirSync(mine, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw fsError(e, mine, 'io');
  }
  return mine;
}

/** Folders of finished and unfinished downloads of `name`; used by `ctx models rm`. */
export function removeDownload(name: string, cacheDir: string): { removed: boolean; bytes: number } {
  let bytes = 0;
  let removed = false;
  const finalDir = join(cacheDir, name);
  // Unfinished downloads whose pull has ended (a pid now used by another program included).
  const dirs = tmpDirsOf(cacheDir, name).filter((t) => t.owner.pid === process.pid || !inUse(t)).map((t) => t.dir);
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
    throw new CtxError('io', `not enough disk space for "${entry.name}": ${formatBytes(needed)} still to download, ${formatBytes(free)} free (set CTX_CACHE_DIR to a bigger disk)`, { path: cacheDir });
  }
}
