// Where ctx keeps its files, following the XDG base directory convention:
//   cache  (downloaded models, condensed documents): $CTX_CACHE_DIR, else $XDG_CACHE_HOME/ctx, else ~/.cache/ctx
//   config (settings):                               $CTX_CONFIG_DIR, else $XDG_CONFIG_HOME/ctx, else ~/.config/ctx
// Each function reads the environment at call time, so tests can point ctx at a temporary folder.

import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** An XDG variable counts only when it is an absolute path; the spec says relative ones are ignored. */
function xdgBase(variable: string | undefined, fallback: string): string {
  return variable && isAbsolute(variable) ? variable : join(homedir(), fallback);
}

export function ctxCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CTX_CACHE_DIR) return resolve(env.CTX_CACHE_DIR);
  return join(xdgBase(env.XDG_CACHE_HOME, '.cache'), 'ctx');
}

export function ctxConfigDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CTX_CONFIG_DIR) return resolve(env.CTX_CONFIG_DIR);
  return join(xdgBase(env.XDG_CONFIG_HOME, '.config'), 'ctx');
}

/** Folder that holds every downloaded model, one sub-folder per registry name. */
export function modelsCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(ctxCacheDir(env), 'models');
}

/** Where a downloaded registry model lives (whether or not it has been downloaded yet). */
export function cachedModelDir(name: string, env: NodeJS.ProcessEnv = process.env): string {
  return join(modelsCacheDir(env), name);
}

/**
 * The package root (the folder with package.json, bin/ and models/). This file sits at
 * src/model/paths.ts when run from source and at dist/model/paths.js when built: two levels down either way.
 */
export function packageRoot(): string {
  return fileURLToPath(new URL('../..', import.meta.url));
}
