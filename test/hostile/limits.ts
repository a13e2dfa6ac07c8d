// The hostile-input suite's harness: every case runs ctx the way a user does (the built CLI in its own
// process) under a time limit and, where /usr/bin/time exists, a peak-memory limit, so a case that
// hangs or balloons fails that case instead of the suite.

import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeTinyTokenizer } from '../../scripts/make-tiny-tokenizer.js';
import { PRESETS, writeRandomModel } from '../../tools/random-model.js';
import { BIN, cleanEnv } from '../cli/spawn-ctx.js';
import { REPO_ROOT, scratchDir } from '../helpers/fixtures.js';

const TIME = '/usr/bin/time';
/** Why peak memory is not checked, or null when it is. */
export const noMemoryCheck = existsSync(TIME) ? null : `${TIME} is absent: peak memory is not checked`;

export interface Limits {
  /** Kill the run after this long (the case then fails). */
  timeoutMs: number;
  /** Fail when the process's peak RSS exceeds this. */
  maxRssMb: number;
}

export interface LimitedRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Peak RSS in MB, or null when unmeasured. */
  rssMb: number | null;
  timedOut: boolean;
  /** Milliseconds from the signal sent by `interruptWhen` or `interruptAfterMs` to the exit. */
  exitAfterSignalMs: number | null;
}

export interface RunOptions {
  env?: Record<string, string>;
  input?: string;
  cwd?: string;
  /** Send SIGINT once stdout or stderr matches this… */
  interruptWhen?: RegExp;
  /** …this long after it matches (default at once)… */
  interruptDelayMs?: number;
  /** …or this long after the start. */
  interruptAfterMs?: number;
  /** The signal sent instead of SIGINT (SIGTERM: what `kill` and service managers send). */
  interruptWith?: NodeJS.Signals;
}

/** Runs `ctx args…` within `limits`; never throws for the child's own failure. */
export function ctxLimited(args: string[], limits: Limits, o: RunOptions = {}): Promise<LimitedRun> {
  const rssFile = join(scratchDir('rss'), 'rss');
  const argv = [process.execPath, BIN, ...args];
  // time ignores SIGINT but not SIGTERM: a run to be sent SIGTERM goes without it (memory unchecked).
  const measured = !noMemoryCheck && (o.interruptWith ?? 'SIGINT') === 'SIGINT';
  const child = !measured
    ? spawn(argv[0]!, argv.slice(1), { cwd: o.cwd ?? REPO_ROOT, env: cleanEnv(o.env), detached: true })
    : spawn(TIME, ['-f', '%M', '-o', rssFile, ...argv], { cwd: o.cwd ?? REPO_ROOT, env: cleanEnv(o.env), detached: true });
  // Its own process group, so a signal reaches ctx as a terminal's Ctrl-C would (time ignores SIGINT).
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, sig);
    } catch {
      // already gone
    }
  };
  const t0 = performance.now();
  let stdout = '';
  let stderr = '';
  let signalledAt: number | null = null;
  let matched = false;
  let delayTimer: NodeJS.Timeout | undefined;
  let timedOut = false;
  const check = () => {
    if (o.interruptWhen && !matched && o.interruptWhen.test(stdout + stderr)) {
      matched = true;
      const send = () => {
        signalledAt = performance.now();
        signalGroup(o.interruptWith ?? 'SIGINT');
      };
      if (o.interruptDelayMs) delayTimer = setTimeout(send, o.interruptDelayMs);
      else send();
    }
  };
  child.stdout.on('data', (d) => ((stdout += d), check()));
  child.stderr.on('data', (d) => ((stderr += d), check()));
  child.stdin.on('error', () => {});
  child.stdin.end(o.input ?? '');
  const interruptTimer =
    o.interruptAfterMs === undefined
      ? undefined
      : setTimeout(() => {
          signalledAt = performance.now();
          signalGroup(o.interruptWith ?? 'SIGINT');
        }, o.interruptAfterMs);
  const timer = setTimeout(() => {
    timedOut = true;
    signalGroup('SIGKILL');
  }, limits.timeoutMs);
  return new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(interruptTimer);
      clearTimeout(delayTimer);
      const end = performance.now();
      let rssMb: number | null = null;
      if (measured && existsSync(rssFile)) {
        // The last number in time's report is the peak RSS in KB (a line before it may give the exit status).
        const kb = Number(/(\d+)\s*$/.exec(readFileSync(rssFile, 'utf8'))?.[1]);
        if (Number.isFinite(kb)) rssMb = kb / 1024;
        rmSync(rssFile, { force: true });
      }
      resolve({
        code,
        signal,
        stdout,
        stderr,
        ms: end - t0,
        rssMb,
        timedOut,
        exitAfterSignalMs: signalledAt === null ? null : end - signalledAt,
      });
    });
  });
}

/** Asserts the run stayed within its limits; returns it for further checks. */
export function withinLimits(r: LimitedRun, limits: Limits): LimitedRun {
  if (r.timedOut) throw new Error(`still running after ${limits.timeoutMs} ms (killed); stderr: ${r.stderr.slice(-500)}`);
  if (r.rssMb !== null && r.rssMb > limits.maxRssMb) throw new Error(`peak memory ${r.rssMb.toFixed(0)} MB > ${limits.maxRssMb} MB`);
  return r;
}

/** A small model folder that runs (random weights, the tiny tokenizer), then made hostile by `mutate`. */
export function hostileModel(
  name: string,
  mutate: { config?: (c: Record<string, unknown>) => void; tokenizer?: (t: Record<string, unknown>) => void; template?: string } = {},
): string {
  const dir = join(scratchDir(`model-${name}`), 'model');
  mkdirSync(dir, { recursive: true });
  writeRandomModel(dir, PRESETS.tiny!);
  writeTinyTokenizer(dir);
  const edit = (file: string, f: (j: Record<string, unknown>) => void) => {
    const path = join(dir, file);
    const json = JSON.parse(readFileSync(path, 'utf8'));
    f(json);
    writeFileSync(path, JSON.stringify(json));
  };
  if (mutate.config) edit('config.json', mutate.config);
  if (mutate.tokenizer) edit('tokenizer.json', mutate.tokenizer);
  if (mutate.template !== undefined) edit('tokenizer_config.json', (c) => (c.chat_template = mutate.template));
  return dir;
}
