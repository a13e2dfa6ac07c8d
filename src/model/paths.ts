// Where ctx keeps its files, following the XDG base directory convention:
//   cache  (downloaded models, condensed documents): $CTX_CACHE_DIR, else $XDG_CACHE_HOME/ctx, else ~/.cache/ctx
//   config (settings):                               $CTX_CONFIG_DIR, else $XDG_CONFIG_HOME/ctx, else ~/.config/ctx
// Each function reads the environment at call time, so tests can point ctx at a temporary folder.
//
// What ctx keeps in its cache is private to the user: session entries hold the tokens of documents
// that may be secret. So the cache folder is created 0700 (and tightened to 0700 when it is the
// default location and looser, e.g. made by an older ctx), its sub-folders are made with
// makePrivateDir, and the files ctx writes there are 0600.

import { chmodSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** An XDG variable counts only when it is an absolute path; the spec says relative ones are ignored. */
function xdgBase(variable: string | undefined, fallback: string): string {
  return variable && isAbsolute(variable) ? variable : join(homedir(), fallback);
}

/**
 * The cache folder. The first call for a path also creates it, private to the user, or tightens the
 * default one; that is best effort: a folder that cannot be made is reported by whatever writes there.
 */
export function ctxCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.CTX_CACHE_DIR ? resolve(env.CTX_CACHE_DIR) : join(xdgBase(env.XDG_CACHE_HOME, '.cache'), 'ctx');
  if (!prepared.has(dir)) {
    prepared.add(dir);
    try {
      // A folder named by CTX_CACHE_DIR may be shared on purpose (or be /tmp): only ctx's own default is tightened.
      makePrivateDir(dir, { tighten: !env.CTX_CACHE_DIR });
    } catch {
      // reported by the first write
    }
  }
  return dir;
}
const prepared = new Set<string>();

/**
 * Creates `dir` and its missing parents with mode 0700; with `tighten` (the default), an existing
 * folder of this user that others may read is set to 0700. Throws the fs error.
 */
export function makePrivateDir(dir: string, o: { tighten?: boolean } = {}): void {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    // Node's recursive mkdir says ENOENT where the real cause is a read-only file system or missing
    // permission (seen on Node 20 with a read-only mount): make the first missing folder alone to
    // get the real error.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    let first = resolve(dir);
    while (!existsSync(dirname(first)) && dirname(first) !== first) first = dirname(first);
    mkdirSync(first, { mode: 0o700 });
    throw e;
  }
  if (o.tighten === false) return;
  const st = statSync(dir);
  if ((st.mode & 0o077) !== 0 && st.uid === process.getuid?.()) chmodSync(dir, 0o700);
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
