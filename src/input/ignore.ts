// Ignore rules with git's semantics (gitignore(5)), used for .gitignore, .ignore and .ctxignore
// files and for ctx's built-in defaults.
//
// The rules that matter, and how they are met here:
//   - "#" starts a comment, blank lines are skipped, trailing spaces are dropped unless escaped.
//   - "!" negates: a later "!x" re-includes what an earlier pattern excluded.
//   - A trailing "/" matches directories only.
//   - A "/" at the start or in the middle anchors the pattern to the folder of the file that holds it;
//     otherwise the pattern matches a name at any depth below that folder.
//   - "**" spans folders (see glob.ts).
//   - The last matching pattern wins, and files in deeper folders win over shallower ones.
//   - A file inside an excluded folder cannot be re-included: the walker never enters such a folder.

import { readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { globToRegExpSource } from './glob.js';

/** The ignore files ctx reads in every folder, lowest precedence first (ripgrep's order). */
export const IGNORE_FILES = ['.gitignore', '.ignore', '.ctxignore'] as const;

export interface IgnoreRule {
  /** The pattern as written, for skip reasons. */
  pattern: string;
  negate: boolean;
  dirOnly: boolean;
  regex: RegExp;
}

/** The rules of one ignore file (or the defaults), with the folder they are relative to. */
export interface RuleSet {
  /** Absolute folder the patterns are relative to. */
  base: string;
  /** Where the rules came from, for skip reasons: ".gitignore", "src/.ctxignore", "default". */
  label: string;
  rules: IgnoreRule[];
}

export interface IgnoreMatch {
  ignored: boolean;
  rule: IgnoreRule;
  label: string;
}

/**
 * What ctx leaves out of a folder unless an ignore file re-includes it with "!": version-control
 * folders, dependency and build output, lock files, caches, and binary or media formats that hold no
 * text worth reading. (Binary files that slip through are caught by content sniffing.)
 */
export const DEFAULT_IGNORES: readonly string[] = [
  // version control and editors
  '.git', '.hg/', '.svn/', '.DS_Store', '.idea/', '.vscode/',
  // dependencies, virtual environments, caches
  'node_modules/', 'bower_components/', '.venv/', 'venv/', '__pycache__/', '.mypy_cache/',
  '.pytest_cache/', '.tox/', '.gradle/', '.cache/',
  // build output
  'dist/', 'build/', 'target/', 'out/', '.next/', '.nuxt/', 'coverage/', '*.tsbuildinfo',
  // lock files: long, generated, and of no use to a reader
  'package-lock.json', 'yarn.lock', 'pnpm-lock.yaml', 'bun.lockb', 'Cargo.lock', 'poetry.lock',
  'Pipfile.lock', 'Gemfile.lock', 'composer.lock', 'go.sum', 'uv.lock',
  // compiled code and libraries
  '*.o', '*.a', '*.so', '*.so.*', '*.dylib', '*.dll', '*.exe', '*.class', '*.jar', '*.pyc', '*.pyo',
  '*.wasm', '*.node',
  // images, audio, video, fonts
  '*.png', '*.jpg', '*.jpeg', '*.gif', '*.bmp', '*.ico', '*.webp', '*.tif', '*.tiff', '*.psd',
  '*.heic', '*.mp3', '*.wav', '*.flac', '*.ogg', '*.m4a', '*.mp4', '*.mkv', '*.mov', '*.avi',
  '*.webm', '*.woff', '*.woff2', '*.ttf', '*.otf', '*.eot',
  // archives, databases, model weights
  '*.zip', '*.tar', '*.gz', '*.tgz', '*.bz2', '*.xz', '*.zst', '*.7z', '*.rar', '*.iso', '*.dmg',
  '*.sqlite', '*.sqlite3', '*.db', '*.safetensors', '*.gguf', '*.onnx', '*.pt', '*.pth', '*.ckpt',
  '*.npy', '*.npz', '*.pkl',
  // minified bundles and source maps: one enormous line each
  '*.min.js', '*.min.css', '*.map',
];

/** Parses one line of an ignore file; null for blank lines and comments. */
export function parseIgnoreLine(line: string): IgnoreRule | null {
  let text = line.replace(/\r$/, '');
  if (text === '' || text.startsWith('#')) return null;
  // Trailing spaces are dropped unless the last one is escaped with a backslash.
  text = text.replace(/(?<!\\) +$/, '');
  if (text.endsWith('\\ ')) text = `${text.slice(0, -2)} `;
  if (text === '') return null;

  let negate = false;
  if (text.startsWith('!')) {
    negate = true;
    text = text.slice(1);
  } else if (text.startsWith('\\!') || text.startsWith('\\#')) {
    text = text.slice(1);
  }

  let dirOnly = false;
  if (text.endsWith('/')) {
    dirOnly = true;
    text = text.replace(/\/+$/, '');
  }
  if (text === '') return null;

  // A slash anywhere but at the end anchors the pattern to the ignore file's folder.
  const anchored = text.includes('/');
  const body = text.startsWith('/') ? text.slice(1) : text;
  const source = globToRegExpSource(body);
  const regex = new RegExp(anchored ? `^${source}$` : `^(?:.*/)?${source}$`);
  return { pattern: line.trim(), negate, dirOnly, regex };
}

export function parseIgnoreText(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const line of text.split('\n')) {
    const rule = parseIgnoreLine(line);
    if (rule) rules.push(rule);
  }
  return rules;
}

export function defaultRuleSet(base: string): RuleSet {
  return { base, label: 'default', rules: DEFAULT_IGNORES.map((p) => parseIgnoreLine(p)!) };
}

/**
 * Reads the ignore files of one folder into rule sets (lowest precedence first). Missing files are
 * normal; an unreadable one is reported through `onUnreadable` and otherwise ignored, because one
 * bad ignore file should not stop a walk.
 */
export async function loadFolderRules(
  dir: string,
  labelPrefix: string,
  onUnreadable: (file: string, error: unknown) => void,
  /** The folder's entries when the caller has listed it: only ignore files among them are opened. */
  entries?: readonly string[],
): Promise<RuleSet[]> {
  const sets: RuleSet[] = [];
  for (const name of IGNORE_FILES) {
    if (entries && !entries.includes(name)) continue;
    const file = join(dir, name);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR' && code !== 'EISDIR') onUnreadable(file, e);
      continue;
    }
    const rules = parseIgnoreText(text);
    if (rules.length) sets.push({ base: dir, label: labelPrefix + name, rules });
  }
  return sets;
}

/**
 * Decides whether `absPath` is ignored. `stack` holds rule sets from the shallowest folder to the
 * deepest (defaults first); the deepest set and, within a set, the last rule, are asked first, and
 * the first rule that matches decides.
 */
export function matchIgnore(stack: readonly RuleSet[], absPath: string, isDir: boolean): IgnoreMatch | null {
  for (let s = stack.length - 1; s >= 0; s--) {
    const set = stack[s]!;
    const rel = relative(set.base, absPath).split(sep).join('/');
    if (rel === '' || rel.startsWith('../')) continue;
    for (let r = set.rules.length - 1; r >= 0; r--) {
      const rule = set.rules[r]!;
      if (rule.dirOnly && !isDir) continue;
      if (rule.regex.test(rel)) return { ignored: !rule.negate, rule, label: set.label };
    }
  }
  return null;
}
