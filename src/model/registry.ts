// The registry of models ctx knows by name (models/registry.json in the package). Two kinds of entry:
//   hub   — a Hugging Face repo at a revision, with the files to download and what is known of them
//           (size, sha256; null where unknown). Pulled into the cache by hub.ts.
//   local — a folder that ships inside the package (the project's own demo model).
// The file is validated on load, so a bad entry fails with its name, not deep inside a download.

import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { CtxError, fsError } from '../errors.js';
import { ARCHITECTURES, type ArchName } from './config.js';
import { packageRoot } from './paths.js';

/**
 * The model ask, summarize and chat use without -m: downloaded on first use. Qwen2.5-1.5B-Instruct
 * is the smallest registry model that answers questions about long documents usefully on a CPU
 * (32K native window, Apache-2.0).
 */
export const DEFAULT_MODEL = 'qwen2.5-1.5b-instruct';

/** What `ctx models list` recommends; `auto` picks by the model's config (beacon weights, CLEX, FocusLLM). */
export type RecommendedStrategy = 'beacon' | 'select' | 'full' | 'focus';
const RECOMMENDED: readonly string[] = ['beacon', 'select', 'full', 'focus'];

export interface RegistryFile {
  /** Path inside the repo (and inside the model folder), "/"-separated, never absolute or with "..". */
  path: string;
  /** Exact size in bytes, or null when unknown. */
  size: number | null;
  /** Lower-case hex sha256 of the content, or null when unknown. */
  sha256: string | null;
  /** A 404 for this file is not an error (e.g. generation_config.json, which some repos lack). */
  optional?: boolean;
}

interface EntryCommon {
  name: string;
  arch?: ArchName;
  params?: string;
  nativeWindow?: number;
  recommendedStrategy: RecommendedStrategy;
  license: string;
  notes?: string[];
}

export interface HubEntry extends EntryCommon {
  kind: 'hub';
  /** "org/repo" on the hub. */
  hub: string;
  /**
   * A commit sha (pinned): the files' sizes and checksums are those of that commit. Or a branch
   * name such as "main", whose files then carry no checksum (a branch can move to other files);
   * the shipped registry says why in `unpinned` (test/model/registry.test.ts).
   */
  revision: string;
  pinned: boolean;
  /** Why the entry names no commit (only where it does not). */
  unpinned?: string;
  /** The hub requires an accepted license and HF_TOKEN. */
  gated: boolean;
  files: RegistryFile[];
  /** Rough download size for listings when exact sizes are unknown. */
  approxBytes?: number;
}

export interface LocalEntry extends EntryCommon {
  kind: 'local';
  /** Absolute folder of the model. */
  dir: string;
}

export type RegistryEntry = HubEntry | LocalEntry;

export interface Registry {
  /** Where the registry was read from (for messages). */
  source: string;
  entries: RegistryEntry[];
}

type Json = Record<string, unknown>;

/** The registry that ships with ctx. */
export function defaultRegistryPath(): string {
  return join(packageRoot(), 'models', 'registry.json');
}

/**
 * Reads and validates a registry file. `local` paths are relative to the package root for the
 * built-in registry (they are written "models/needle-demo") and to the file's own folder otherwise.
 */
export function loadRegistry(path = defaultRegistryPath()): Registry {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw fsError(e, path, 'model');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new CtxError('model', `not valid JSON (${(e as Error).message})`, { path });
  }
  const base = path === defaultRegistryPath() ? packageRoot() : dirname(path);
  return parseRegistry(json, path, base);
}

/** Validates an already-parsed registry (tests build theirs in memory). */
export function parseRegistry(json: unknown, source: string, localBase: string): Registry {
  const bad = (what: string): never => {
    throw new CtxError('model', `registry: ${what}`, { path: source });
  };
  const models = (json as Json | null)?.models;
  if (!Array.isArray(models)) bad('no "models" list');
  const entries: RegistryEntry[] = [];
  const names = new Set<string>();
  for (const raw of models as unknown[]) {
    const e = (raw ?? {}) as Json;
    const name = typeof e.name === 'string' && /^[a-z0-9][a-z0-9._-]*$/.test(e.name) ? e.name : bad(`entry name ${JSON.stringify(e.name)} must be lower-case letters, digits, ".", "_" or "-"`);
    if (names.has(name)) bad(`"${name}" is listed twice`);
    names.add(name);
    const where = `"${name}"`;
    const strategy = e.recommendedStrategy;
    if (typeof strategy !== 'string' || !RECOMMENDED.includes(strategy)) bad(`${where}: recommendedStrategy must be one of ${RECOMMENDED.map((s) => `"${s}"`).join(', ')}`);
    if (e.arch !== undefined && !(typeof e.arch === 'string' && e.arch in ARCHITECTURES)) bad(`${where}: unknown arch ${JSON.stringify(e.arch)}`);
    if (e.nativeWindow !== undefined && !(Number.isInteger(e.nativeWindow) && (e.nativeWindow as number) > 0)) bad(`${where}: nativeWindow must be a positive integer`);
    const common: EntryCommon = {
      name,
      arch: e.arch as ArchName | undefined,
      params: typeof e.params === 'string' ? e.params : undefined,
      nativeWindow: e.nativeWindow as number | undefined,
      recommendedStrategy: strategy as RecommendedStrategy,
      license: typeof e.license === 'string' ? e.license : 'unknown',
      notes: Array.isArray(e.notes) ? e.notes.map(String) : undefined,
    };

    if (typeof e.local === 'string') {
      entries.push({ ...common, kind: 'local', dir: isAbsolute(e.local) ? e.local : join(localBase, e.local) });
      continue;
    }
    if (typeof e.hub !== 'string' || !/^[\w.-]+\/[\w.-]+$/.test(e.hub)) bad(`${where}: "hub" must be "org/repo"`);
    const revision = typeof e.revision === 'string' && e.revision && !e.revision.includes('..') ? e.revision : bad(`${where}: missing "revision"`);
    if (!Array.isArray(e.files) || e.files.length === 0) bad(`${where}: no "files"`);
    const files = (e.files as unknown[]).map((f) => parseFile(f as Json, where, bad));
    const pinned = /^[0-9a-f]{40}$/.test(revision);
    const unpinned = typeof e.unpinned === 'string' && e.unpinned.trim() ? e.unpinned : undefined;
    if (pinned && unpinned) bad(`${where}: "unpinned" given for a pinned revision`);
    const checked = files.find((f) => f.sha256 !== null);
    if (!pinned && checked) bad(`${where}: ${checked.path} has a sha256 but the revision "${revision}" is a branch: a checksum belongs to a commit`);
    entries.push({
      ...common,
      kind: 'hub',
      hub: e.hub as string,
      revision,
      pinned,
      unpinned,
      gated: e.gated === true,
      files,
      approxBytes: typeof e.approxBytes === 'number' ? e.approxBytes : undefined,
    });
  }
  return { source, entries };
}

function parseFile(f: Json, where: string, bad: (what: string) => never): RegistryFile {
  const path = typeof f.path === 'string' ? f.path : bad(`${where}: a file has no "path"`);
  // The path becomes a path on disk: refuse anything that could leave the model folder.
  if (path === '' || isAbsolute(path) || path.includes('\\') || path.split('/').some((p) => p === '' || p === '.' || p === '..' || p.startsWith('.'))) {
    bad(`${where}: file path ${JSON.stringify(path)} must stay inside the model folder`);
  }
  if (!(f.size === null || f.size === undefined || (Number.isSafeInteger(f.size) && (f.size as number) >= 0))) bad(`${where}: ${path}: size must be a byte count or null`);
  if (!(f.sha256 === null || f.sha256 === undefined || (typeof f.sha256 === 'string' && /^[0-9a-f]{64}$/.test(f.sha256)))) {
    bad(`${where}: ${path}: sha256 must be 64 lower-case hex digits or null`);
  }
  return { path, size: (f.size as number | null | undefined) ?? null, sha256: (f.sha256 as string | null | undefined) ?? null, optional: f.optional === true };
}

export function findEntry(registry: Registry, name: string): RegistryEntry | undefined {
  return registry.entries.find((e) => e.name === name);
}

/** A hub entry by its repo name ("Qwen/Qwen2.5-1.5B-Instruct"), case-insensitively as the hub does. */
export function findByRepo(registry: Registry, repo: string): HubEntry | undefined {
  const want = repo.toLowerCase();
  return registry.entries.find((e): e is HubEntry => e.kind === 'hub' && e.hub.toLowerCase() === want);
}

/** Total download size: exact when every file's size is known, else the entry's approximation. */
export function downloadSize(entry: HubEntry): { bytes: number | null; exact: boolean } {
  if (entry.files.every((f) => f.size !== null)) return { bytes: entry.files.reduce((n, f) => n + f.size!, 0), exact: true };
  return { bytes: entry.approxBytes ?? null, exact: false };
}
