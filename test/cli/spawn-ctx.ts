// Runs the built CLI (node bin/ctx.js, compiled by `tsc -p .` before the tests) the way a user does,
// with a clean environment: no CTX_* variables from the caller and an empty config folder.

import { spawnSync } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, scratchDir } from '../helpers/fixtures.js';

export const BIN = join(REPO_ROOT, 'bin', 'ctx.js');

export interface CtxResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

let emptyConfigHome: string | null = null;

/** The environment a test run sees: the caller's, minus CTX_*, plus `env`. */
export function cleanEnv(env: Record<string, string> = {}): NodeJS.ProcessEnv {
  if (!emptyConfigHome) {
    emptyConfigHome = scratchDir('xdg');
    chmodSync(emptyConfigHome, 0o755); // readable when a test runs ctx as another user
  }
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CTX_')));
  return { ...base, XDG_CONFIG_HOME: emptyConfigHome, ...env };
}

export function ctx(
  args: string[],
  opts: { input?: string | Buffer; env?: Record<string, string>; cwd?: string; prefix?: string[] } = {},
): CtxResult {
  const command = opts.prefix ? opts.prefix[0]! : process.execPath;
  const argv = opts.prefix ? [...opts.prefix.slice(1), process.execPath, BIN, ...args] : [BIN, ...args];
  const r = spawnSync(command, argv, {
    cwd: opts.cwd ?? REPO_ROOT,
    env: cleanEnv(opts.env),
    input: opts.input ?? '',
    encoding: 'utf8',
    timeout: 120_000,
  });
  if (r.error) throw r.error;
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}
