// How much of the machine other processes used while a benchmark cell ran. The 1-minute load
// average misses bursts and counts waiting, so this reads CPU time itself: over the cell, every
// CPU's busy time (/proc/stat) minus this process's and its waited-for children's
// (/proc/self/stat: utime, stime, cutime, cstime; the cell's child has been waited for), as a share
// of all cores' time. 0.5 on two cores: other work kept one core busy on average. Linux only
// (null elsewhere).

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface CpuClock {
  /** Busy ticks of every CPU since boot. */
  busy: number;
  /** Ticks of this process and its waited-for children. */
  mine: number;
  /** performance.now() when read, ms. */
  at: number;
}

let ticksPerSecond: number | null = null;

export function cpuClock(): CpuClock | null {
  try {
    // cpu  user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + cpu[7];
    const stat = readFileSync('/proc/self/stat', 'utf8');
    // Fields after the command name: state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    const mine = f[11] + f[12] + f[13] + f[14];
    ticksPerSecond ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return { busy, mine, at: performance.now() };
  } catch {
    return null;
  }
}

/** The share of all `cores`' time that other processes used between two readings (0–1). */
export function otherCpuShare(a: CpuClock | null, b: CpuClock | null, cores: number): number | null {
  if (!a || !b || !ticksPerSecond || b.at <= a.at) return null;
  const other = b.busy - a.busy - (b.mine - a.mine);
  const available = ((b.at - a.at) / 1000) * ticksPerSecond * cores;
  return Math.min(1, Math.max(0, other / available));
}
