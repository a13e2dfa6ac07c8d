// --model NAME|PATH → a model folder on disk.
//
//   a path (contains a slash, starts with "." or "~", or names an existing folder) → that folder
//   "org/repo" of a registry entry that is not a folder here                      → that entry
//   a registry name → the package's own folder (local entries) or <cache>/models/<name>, downloaded
//   first when asked to
//   a .gguf file, ollama:NAME[:TAG] or lms:PUBLISHER/MODEL → that GGUF file (local-models.ts)
//
// Every failure says what to do next: pull the model, or point --model at a folder.

import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { CtxError } from '../errors.js';
import { formatBytes } from '../units.js';
import { pullModel, readDownloadRecord, type PullOptions } from './hub.js';
import { resolveLocalModel } from './local-models.js';
import { modelsCacheDir } from './paths.js';
import { downloadSize, findByRepo, findEntry, loadRegistry, type Registry, type RegistryEntry } from './registry.js';

export interface ResolveOptions extends PullOptions {
  /** Download a registry model that is not in the cache yet (default false: say how instead). */
  download?: boolean;
  /** The registry to resolve names in (default: the one that ships with ctx). */
  registry?: Registry;
}

function looksLikePath(s: string): boolean {
  return s.includes('/') || s.includes('\\') || s.startsWith('.') || s.startsWith('~');
}

function expandHome(s: string): string {
  return s === '~' || s.startsWith('~/') ? join(homedir(), s.slice(1)) : s;
}

function folder(path: string, shownAs: string): string {
  const dir = resolve(expandHome(path));
  if (!existsSync(dir)) throw new CtxError('model', 'model folder does not exist', { path: shownAs });
  if (!statSync(dir).isDirectory()) throw new CtxError('model', 'a model is a folder (config.json, *.safetensors, tokenizer.json), not a file', { path: shownAs });
  return dir;
}

export async function resolveModelDir(nameOrPath: string, opts: ResolveOptions = {}): Promise<string> {
  if (!nameOrPath) throw new CtxError('usage', 'no model given: pass -m <name or folder> (ctx models list shows the names)');
  const gguf = resolveLocalModel(nameOrPath, opts.env);
  if (gguf !== null) return gguf;
  const registry = opts.registry ?? loadRegistry();

  // An existing folder always wins, so a local copy can shadow a registry name.
  const asPath = resolve(expandHome(nameOrPath));
  if (existsSync(asPath) && statSync(asPath).isDirectory()) return asPath;

  const entry = findEntry(registry, nameOrPath) ?? (looksLikePath(nameOrPath) ? findByRepo(registry, nameOrPath) : undefined);
  if (!entry) {
    if (looksLikePath(nameOrPath)) return folder(nameOrPath, nameOrPath);
    const names = registry.entries.map((e) => e.name).join(', ');
    throw new CtxError('model', `unknown model "${nameOrPath}": not a folder, and not one of ${names} (ctx models list)`);
  }
  return entryDir(entry, opts);
}

/** The folder of a registry entry, downloading a hub model when allowed. */
export async function entryDir(entry: RegistryEntry, opts: ResolveOptions = {}): Promise<string> {
  if (entry.kind === 'local') {
    if (!existsSync(join(entry.dir, 'config.json'))) {
      throw new CtxError('model', `the built-in model "${entry.name}" is missing from this installation`, { path: entry.dir });
    }
    return entry.dir;
  }
  const dir = join(opts.cacheDir ?? modelsCacheDir(opts.env), entry.name);
  if (readDownloadRecord(dir)) return dir;
  if (!opts.download) {
    const { bytes, exact } = downloadSize(entry);
    const size = bytes !== null ? ` (${exact ? '' : '~'}${formatBytes(bytes)})` : '';
    throw new CtxError('model', `"${entry.name}" is not downloaded yet: run "ctx models pull ${entry.name}"${size}, or pass --model <folder> for a copy you already have`);
  }
  return pullModel(entry, opts);
}
