// Runs bin/ctx.js for the end-to-end tests of the UI, cache and chat suites, with its own config
// and cache folders so that nothing outside the test's scratch folder is read or written.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../helpers/fixtures.js';

export const BIN = join(REPO_ROOT, 'bin', 'ctx.js');

export interface CtxHome {
  config: string;
  cache: string;
  /** The folder of session entries. */
  sessions: string;
}

export function ctxHome(dir: string): CtxHome {
  const config = join(dir, 'config');
  const cache = join(dir, 'cache');
  mkdirSync(config, { recursive: true });
  return { config, cache, sessions: join(cache, 'sessions') };
}

export function ctxEnv(home: CtxHome, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { ...process.env, CTX_CONFIG_DIR: home.config, CTX_CACHE_DIR: home.cache, ...extra };
}

export function ctxSync(home: CtxHome, args: string[], o: { input?: string; env?: NodeJS.ProcessEnv } = {}) {
  return spawnSync(process.execPath, [BIN, ...args], { input: o.input ?? '', encoding: 'utf8', env: ctxEnv(home, o.env), timeout: 120_000 });
}

export function ctxSpawn(home: CtxHome, args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], { env: ctxEnv(home, env), stdio: ['ignore', 'pipe', 'pipe'] });
}
