// Which process owns a temporary file or folder (a download in progress, a cache entry being
// written), and whether that process is still running. A pid alone is not enough: pids are reused,
// and a download folder whose pid now belongs to another program blocked pulls forever. So an owner
// is the pid plus the process's start time and the boot it started in (Linux /proc); where /proc is
// missing, the pid alone.

import { readFileSync } from 'node:fs';

export interface Owner {
  pid: number;
  /** Start time in clock ticks since boot (/proc/<pid>/stat field 22), or null where unknown. */
  start: string | null;
  /** /proc/sys/kernel/random/boot_id, or null where unknown. */
  boot: string | null;
}

function readOr(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** Field 22 of /proc/<pid>/stat; the command name (field 2) may hold spaces, so count after its ")". */
function startTime(pid: number): string | null {
  const stat = readOr(`/proc/${pid}/stat`);
  if (stat === null) return null;
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null;
}

function bootId(): string | null {
  return readOr('/proc/sys/kernel/random/boot_id')?.trim() ?? null;
}

let self: Owner | null = null;

/** This process. */
export function thisProcess(): Owner {
  self ??= { pid: process.pid, start: startTime(process.pid), boot: bootId() };
  return self;
}

/** Whether the process with this pid exists (signal 0 asks without sending anything). */
function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether `owner` is still running: the same pid, started at the same time, in this boot. */
export function isRunning(owner: Owner): boolean {
  if (!Number.isInteger(owner.pid) || owner.pid <= 0) return false;
  if (owner.pid === process.pid) return owner.start === thisProcess().start;
  if (!pidExists(owner.pid)) return false;
  const me = thisProcess();
  if (owner.boot !== null && me.boot !== null && owner.boot !== me.boot) return false;
  if (owner.start !== null) {
    const now = startTime(owner.pid);
    if (now !== null && now !== owner.start) return false; // the pid was reused
  }
  return true;
}

/** "<pid>.<start>", for file names; parseTag reads it back (a bare "<pid>" from older ctx too). */
export function ownerTag(o: Owner = thisProcess()): string {
  return o.start === null ? String(o.pid) : `${o.pid}.${o.start}`;
}

export function parseTag(tag: string): Owner | null {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(tag);
  if (!m) return null;
  return { pid: Number(m[1]), start: m[2] ?? null, boot: null };
}
