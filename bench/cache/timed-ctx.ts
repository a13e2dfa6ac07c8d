// One `ctx` command run as a user waits for it: spawned with --events, timed from the spawn to the
// first event of each type and to exit, with its CPU seconds and the share of the machine other
// processes used meanwhile. Shared by the cache benchmarks (pdf-text.ts, first-token.ts).

import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuClock, otherCpuShare } from '../cpu/other-cpu.js';

export const root = fileURLToPath(new URL('../../', import.meta.url));
export const bin = join(root, 'bin', 'ctx.js');

const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
/** CPU seconds of this process's waited-for children (ctx, once it has exited). */
function childCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
  return (f[13]! + f[14]!) / ticks; // cutime + cstime
}

/** An event line of `--events` (src/engine/events.ts). */
export type CtxEvent = { type: string } & Record<string, unknown>;

export interface Timed {
  /** Seconds from spawn to the first event of each type. */
  events: Record<string, number>;
  /** The first event of each type, as printed. */
  first: Record<string, CtxEvent>;
  exit: number;
  /** ctx's own CPU seconds (user + system, worker threads included). */
  cpu: number;
  /** Share of all cores other processes used meanwhile (0–1), or null off Linux. */
  others: number | null;
  /** The first `read` event: its seconds and whether it came from the cache. */
  read: { seconds: number; cached: boolean } | null;
  documentTokens: number | null;
}

/** Runs `ctx <args>` (args should include --events) with CTX_CACHE_DIR = cacheDir. */
export function timed(args: string[], cacheDir: string): Promise<Timed> {
  return new Promise((resolve, reject) => {
    const clock = cpuClock();
    const cpu0 = childCpuSeconds();
    const t0 = performance.now();
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, CTX_CACHE_DIR: cacheDir }, stdio: ['ignore', 'pipe', 'ignore'] });
    const events: Record<string, number> = {};
    const first: Record<string, CtxEvent> = {};
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        if (!line.startsWith('{"type":"')) continue;
        const e = JSON.parse(line) as CtxEvent;
        if (!(e.type in events)) {
          events[e.type] = (performance.now() - t0) / 1000;
          first[e.type] = e;
        }
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const exit = (performance.now() - t0) / 1000;
      if (code !== 0) return reject(new Error(`ctx ${args.join(' ')}: exit ${code}`));
      const read = first.read ? { seconds: first.read.seconds as number, cached: first.read.cached as boolean } : null;
      const documentTokens = first.plan ? (first.plan.documentTokens as number) : null;
      resolve({ events, first, exit, cpu: childCpuSeconds() - cpu0, others: otherCpuShare(clock, cpuClock(), cpus().length), read, documentTokens });
    });
  });
}

/** Whether the CPU says it runs under a hypervisor (Linux). */
export const isVm = () => existsSync('/proc/cpuinfo') && / hypervisor( |$)/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
export const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Replaces the text between `start` and `end` in `file` (or appends it), keeping the rest. */
export function writeSection(before: string, start: string, end: string, section: string): string {
  const a = before.indexOf(start);
  const b = before.indexOf(end);
  return a >= 0 && b > a ? `${before.slice(0, a)}${section}${before.slice(b + end.length + 1)}` : `${before.trimEnd()}\n\n${section}`;
}
