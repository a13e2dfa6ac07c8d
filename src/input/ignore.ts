// Ignore rules with git's semantics (gitignore(5)), used for .gitignore, .ignore and .ctxignore
// files and for ctx's built-in defaults. One file's patterns are matched by the `ignore` package
// (what eslint and prettier use), case-sensitively as git does on Linux. This file adds what spans
// several files:
//   - patterns are relative to the folder of the file that holds them;
//   - files in deeper folders win over shallower ones (within a file, the last matching pattern wins);
//   - a file inside an excluded folder cannot be re-included: the walker never enters such a folder.

import { readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import ignore, { type Ignore } from 'ignore';

/** The ignore files ctx reads in every folder, lowest precedence first (ripgrep's order). */
export const IGNORE_FILES = ['.gitignore', '.ignore', '.ctxignore'] as const;

/** The rules of one ignore file (or the defaults), with the folder they are relative to. */
export interface RuleSet {
  /** Absolute folder the patterns are relative to. */
  base: string;
  /** Where the rules came from, for skip reasons: ".gitignore", "src/.ctxignore", "default". */
  label: string;
  matcher: Ignore;
}

/** Which rule decided, as written (for skip reasons), and in which file; a re-inclusion ("!x") keeps the path. */
export type IgnoreMatch = { ignored: true; pattern: string; label: string } | { ignored: false; label: string };

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

/** The rules of an ignore file's text; `base` is the folder it sits in. */
export function ruleSet(base: string, label: string, text: string | readonly string[]): RuleSet {
  return { base, label, matcher: ignore({ ignorecase: false }).add(text) };
}

/**
 * The rules of an ignore file above the walk root, applied to what is below the root only: the root
 * was named by the user, so neither it nor the folders between the file and it count as excluded
 * ("build/" in repo/.gitignore does not stop `ctx ask repo/build/logs`). git itself would call
 * everything under them ignored; the matcher would too, because it checks a path's parents, so each
 * of those folders is re-included after the file's own rules.
 */
export function enteringFolder(set: RuleSet, rootAbs: string): RuleSet {
  const parts = relative(set.base, rootAbs).split(sep).filter((p) => p !== '');
  const chain = parts.map((_, i) => `!/${parts.slice(0, i + 1).map(escapePattern).join('/')}/`);
  return { ...set, matcher: ignore({ ignorecase: false }).add(set.matcher).add(chain) };
}

/** A folder name as a literal ignore pattern. */
function escapePattern(name: string): string {
  return name.replace(/[\\*?[\]!#]/g, '\\$&').replace(/ $/, '\\ ');
}

export function defaultRuleSet(base: string): RuleSet {
  return ruleSet(base, 'default', DEFAULT_IGNORES);
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
    sets.push(ruleSet(dir, labelPrefix + name, text));
  }
  return sets;
}

/**
 * Decides whether `absPath` is ignored. `stack` holds rule sets from the shallowest folder to the
 * deepest (defaults first); the deepest set that has a matching rule decides.
 */
export function matchIgnore(stack: readonly RuleSet[], absPath: string, isDir: boolean): IgnoreMatch | null {
  for (let s = stack.length - 1; s >= 0; s--) {
    const set = stack[s]!;
    const rel = relative(set.base, absPath).split(sep).join('/');
    if (rel === '' || rel.startsWith('../')) continue;
    // A trailing slash tells the matcher it is a folder, for "build/"-style patterns.
    const r = set.matcher.test(isDir ? `${rel}/` : rel);
    if (r.ignored) return { ignored: true, pattern: r.rule?.pattern ?? '', label: set.label };
    if (r.unignored) return { ignored: false, label: set.label };
  }
  return null;
}
