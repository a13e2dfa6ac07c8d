// The repository walk: which files under a folder ctx reads, in which order, and why the others are
// left out. It only lists files; readInputs reads them (and may still skip one for its content).
//
//   - ignore rules: .gitignore, .ignore, .ctxignore in every folder (and in the folders above the
//     root up to the repository's top, as git does), over ctx's defaults (ignore.ts);
//   - a size cap (maxFileBytes) for files found here; files named on the command line have none;
//   - symlinks are followed within the walked folder, and a folder is entered once (a link back to an
//     ancestor is a loop); a link that leads outside the folder is skipped unless followLinks, so a
//     link to / or /etc inside a project cannot make ctx read the system;
//   - order: README* files at the top level first, then path order, compared by code unit (not
//     locale) so every machine reads the same document.

import { existsSync } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fsError } from '../errors.js';
import { formatBytes } from '../units.js';
import { defaultRuleSet, enteringFolder, loadFolderRules, matchIgnore, type RuleSet } from './ignore.js';
import type { SkipCategory } from './rejection.js';

export const DEFAULT_MAX_FILE_BYTES = 1024 * 1024;

export interface FoundFile {
  abs: string;
  /** Path shown to the user and used in SourceRef: the walk root as named, joined with the relative path. */
  display: string;
  size: number;
  /** Reached through a symbolic link (readInputs prefers the real path when the walk finds it too). */
  viaLink: boolean;
}

export interface Skip {
  path: string;
  reason: string;
  category: SkipCategory;
}

export interface WalkOptions {
  maxFileBytes?: number;
  /** Keep only files whose path relative to the root matches (command-line globs). */
  match?: RegExp;
  /** Do not descend deeper than this many folders below the root (globs without "**"). */
  maxDepth?: number;
  signal?: AbortSignal;
  /** Told about ignore files that exist but cannot be read. */
  warn?: (message: string) => void;
  /** Follow symbolic links that lead outside the walked folder (`--follow-links`). Default false. */
  followLinks?: boolean;
}

export interface WalkResult {
  files: FoundFile[];
  skipped: Skip[];
}

export async function walkDirectory(rootAbs: string, rootDisplay: string, opts: WalkOptions = {}): Promise<WalkResult> {
  const maxFileBytes = opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const files: FoundFile[] = [];
  const skipped: Skip[] = [];
  const warn = opts.warn ?? (() => {});
  const onUnreadable = (file: string, e: unknown) =>
    warn(`${file}: ignore file cannot be read (${fsError(e, '').message}); its rules are not applied`);

  const rootReal = await realpath(rootAbs).catch((e) => {
    throw fsError(e, rootDisplay);
  });
  // Folder realpaths entered so far → their display path (a second link to one is a duplicate).
  const entered = new Map<string, string>();
  const skip = (path: string, category: SkipCategory, reason: string) => skipped.push({ path, reason, category });

  async function walkDir(
    dirAbs: string,
    dirDisplay: string,
    rel: string,
    depth: number,
    parentRules: RuleSet[],
    ancestors: Set<string>,
    viaLink: boolean,
  ) {
    opts.signal?.throwIfAborted();
    let names: string[];
    const links = new Set<string>();
    try {
      const entries = await readdir(dirAbs, { withFileTypes: true });
      for (const e of entries) if (e.isSymbolicLink()) links.add(e.name);
      names = entries.map((e) => e.name).sort(compareCodeUnits);
    } catch (e) {
      if (depth === 0) throw fsError(e, rootDisplay);
      skip(dirDisplay + '/', 'unreadable', `cannot be read: ${fsError(e, '').message}`);
      return;
    }
    const rules = [...parentRules, ...(await loadFolderRules(dirAbs, labelPrefix(dirDisplay), onUnreadable, names))];
    if (depth === 0) names = readmeFirst(names);

    for (const name of names) {
      const abs = join(dirAbs, name);
      const display = join(dirDisplay, name);
      const childRel = rel ? `${rel}/${name}` : name;
      // With a glob, only files the glob asks for are worth reporting; without one, everything is.
      const reportable = (isDir: boolean) => !opts.match || (!isDir && opts.match.test(childRel));

      let st;
      try {
        st = await stat(abs); // follows symlinks: a link is what it points to
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        const hit = matchIgnore(rules, abs, false);
        if (!reportable(false)) continue;
        if (hit?.ignored) skip(display, 'ignored', ignoredReason(hit.label, hit.pattern));
        else if (code === 'ELOOP') skip(display, 'symlink loop', 'is a symlink loop');
        else if (code === 'ENOENT') skip(display, 'unreadable', 'is a broken symlink');
        else skip(display, 'unreadable', `cannot be read: ${fsError(e, '').message}`);
        continue;
      }

      const isDir = st.isDirectory();
      const hit = matchIgnore(rules, abs, isDir);
      if (hit?.ignored) {
        if (reportable(isDir)) skip(isDir ? display + '/' : display, 'ignored', ignoredReason(hit.label, hit.pattern));
        continue;
      }
      if (links.has(name) && !opts.followLinks) {
        const target = await realpath(abs).catch(() => null);
        if (target !== null && !isInside(rootReal, target)) {
          if (reportable(isDir)) skip(isDir ? display + '/' : display, 'outside the folder', `is a symbolic link to ${target}, outside ${rootDisplay} (--follow-links reads it)`);
          continue;
        }
      }

      if (isDir) {
        if (opts.maxDepth !== undefined && depth + 1 > opts.maxDepth) continue;
        let real: string;
        try {
          real = await realpath(abs);
        } catch (e) {
          if (reportable(true)) skip(display + '/', 'unreadable', `cannot be read: ${fsError(e, '').message}`);
          continue;
        }
        if (ancestors.has(real)) {
          if (reportable(true)) skip(display + '/', 'symlink loop', `is a symlink loop (points back to ${entered.get(real) ?? real})`);
          continue;
        }
        const seen = entered.get(real);
        if (seen !== undefined) {
          if (reportable(true)) skip(display + '/', 'duplicate', `is the same folder as ${seen} (already read)`);
          continue;
        }
        entered.set(real, display);
        await walkDir(abs, display, childRel, depth + 1, rules, new Set([...ancestors, real]), viaLink || links.has(name));
      } else if (opts.match && !opts.match.test(childRel)) {
        continue;
      } else if (!st.isFile()) {
        // FIFOs, sockets, devices: reading one inside a walk could block forever.
        skip(display, 'not a regular file', 'is not a regular file');
      } else if (st.size > maxFileBytes) {
        skip(
          display,
          'too large',
          `is larger than the size cap (${formatBytes(st.size)} > ${formatBytes(maxFileBytes)}; raise it with --max-file-bytes)`,
        );
      } else {
        files.push({ abs, display, size: st.size, viaLink: links.has(name) || viaLink });
      }
    }
  }

  entered.set(rootReal, rootDisplay);
  const baseRules = [defaultRuleSet(rootAbs), ...(await ancestorRules(rootAbs, onUnreadable))];
  await walkDir(rootAbs, rootDisplay, '', 0, baseRules, new Set([rootReal]), false);
  return { files, skipped };
}

/**
 * Ignore files in the folders above the walk root, up to the top of the git repository it is in,
 * so `ctx ask repo/src` honours repo/.gitignore as git would. Outside a repository: none.
 */
async function ancestorRules(rootAbs: string, onUnreadable: (file: string, e: unknown) => void): Promise<RuleSet[]> {
  const chain: string[] = [];
  let dir = resolve(rootAbs);
  for (;;) {
    if (existsSync(join(dir, '.git'))) break;
    const parent = dirname(dir);
    if (parent === dir) return []; // reached / without finding a repository
    dir = parent;
    chain.unshift(dir);
  }
  // `chain` now runs from the repository's top down to the root's parent (empty when the root is the top).
  const sets: RuleSet[] = [];
  for (const folder of chain) {
    const label = relative(process.cwd(), folder) || '.';
    for (const set of await loadFolderRules(folder, labelPrefix(label), onUnreadable)) sets.push(enteringFolder(set, rootAbs));
  }
  return sets;
}

function labelPrefix(dirDisplay: string): string {
  return dirDisplay === '.' ? '' : `${dirDisplay}/`;
}

function ignoredReason(label: string, pattern: string): string {
  return label === 'default' ? `ignored by default (${pattern})` : `ignored by ${label} (${pattern})`;
}

/** Whether `path` is `folder` or below it (both real paths). */
function isInside(folder: string, path: string): boolean {
  return path === folder || path.startsWith(folder.endsWith(sep) ? folder : folder + sep);
}

export function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** README, README.md, readme.txt … first (they explain the rest), the others keep their order. */
function readmeFirst(names: string[]): string[] {
  const isReadme = (n: string) => /^readme(\.|$)/i.test(n);
  return [...names.filter(isReadme), ...names.filter((n) => !isReadme(n))];
}
