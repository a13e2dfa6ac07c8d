// CPU time of one thread of this process, read from Linux's /proc (schedstat's first field: the
// nanoseconds the thread has run). The tokenizer pool's deadlines count it instead of wall-clock
// time: a process that the machine starves (a niced job on busy cores) runs its legitimate work
// slowly, while a hostile regex in a worker still burns its own CPU time and is stopped when that
// passes the deadline. Where /proc does not give it, the pool falls back to wall-clock time.

import { readFileSync, readlinkSync } from 'node:fs';

/** A thread's clock: the path of its schedstat file, which any thread of the process can read. */
export type ThreadClock = string;

/** The calling thread's clock, or null where /proc does not give it. */
export function threadClock(): ThreadClock | null {
  try {
    // "<pid>/task/<tid>": a path that still names this thread when another thread reads it.
    const clock = `/proc/${readlinkSync('/proc/thread-self')}/schedstat`;
    return cpuMs(clock) === null ? null : clock;
  } catch {
    return null;
  }
}

/** Milliseconds of CPU time the clock's thread has had, or null once it cannot be read (the thread ended). */
export function cpuMs(clock: ThreadClock): number | null {
  try {
    const ns = Number(readFileSync(clock, 'latin1').split(' ')[0]);
    return Number.isFinite(ns) ? ns / 1e6 : null;
  } catch {
    return null;
  }
}
