// Glob patterns → regular expressions. One translator serves both the globs a user types
// (`ctx ask 'src/**/*.ts'`) and the patterns in .gitignore files, which share the same syntax:
//   *    any run of characters except "/"
//   ?    one character except "/"
//   [..] one character from a set ([!..] or [^..] negates); never "/"
//   **   any number of whole path components: "**/x", "a/**/b", "a/**"
//   \c   the character c itself
// Node 20's path.matchesGlob exists but prints an ExperimentalWarning, so ctx has its own.

const REGEX_SPECIAL = /[.*+?^${}()|[\]\\/]/;

/** True when `text` holds an unescaped glob metacharacter. */
export function hasGlobChars(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === '*' || c === '?' || c === '[') return true;
  }
  return false;
}

/**
 * Translates a glob into a regular-expression source matching a whole "/"-separated relative path
 * (no anchors added; callers add ^…$ or a prefix).
 */
export function globToRegExpSource(glob: string): string {
  let out = '';
  let i = 0;
  while (i < glob.length) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        const atStart = i === 0 || glob[i - 1] === '/';
        const end = i + 2;
        if (atStart && glob[end] === '/') {
          // "**/" — zero or more leading directories.
          out += '(?:.*/)?';
          i = end + 1;
          continue;
        }
        if (atStart && end === glob.length) {
          // Trailing "**" — everything below (at least one character, so "a/**" is not "a/").
          out += i === 0 ? '.*' : '.+';
          i = end;
          continue;
        }
        // "**" inside a component ("a**b") is an ordinary star.
        out += '[^/]*';
        i = end;
        continue;
      }
      out += '[^/]*';
      i++;
    } else if (c === '?') {
      out += '[^/]';
      i++;
    } else if (c === '[') {
      const cls = readCharClass(glob, i);
      if (cls) {
        out += cls.source;
        i = cls.end;
      } else {
        out += '\\[';
        i++;
      }
    } else if (c === '\\' && i + 1 < glob.length) {
      out += escapeChar(glob[i + 1]!);
      i += 2;
    } else {
      out += escapeChar(c);
      i++;
    }
  }
  return out;
}

/** A compiled glob matching whole relative paths ("src/a.ts"). */
export function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${globToRegExpSource(glob)}$`);
}

/**
 * Splits a command-line glob into the folder to walk and the pattern below it:
 * "src/**\/*.ts" → { base: "src", pattern: "**\/*.ts" }; "/tmp/a*.txt" → { base: "/tmp", ... }.
 */
export function splitGlob(spec: string): { base: string; pattern: string } {
  const parts = spec.split('/');
  let n = 0;
  while (n < parts.length - 1 && !hasGlobChars(parts[n]!)) n++;
  const baseParts = parts.slice(0, n);
  let base = baseParts.join('/');
  if (spec.startsWith('/') && base === '') base = '/';
  return { base: base === '' ? '.' : base, pattern: parts.slice(n).join('/') };
}

function escapeChar(c: string): string {
  return REGEX_SPECIAL.test(c) ? `\\${c}` : c;
}

/** "[a-z]" at `start` → a regex class that never matches "/", or null when "[" is not closed. */
function readCharClass(glob: string, start: number): { source: string; end: number } | null {
  let i = start + 1;
  let negate = false;
  if (glob[i] === '!' || glob[i] === '^') {
    negate = true;
    i++;
  }
  let body = '';
  // A "]" right after "[" or "[!" is a literal member, as in fnmatch.
  if (glob[i] === ']') {
    body += '\\]';
    i++;
  }
  while (i < glob.length && glob[i] !== ']') {
    const c = glob[i]!;
    if (c === '\\' && i + 1 < glob.length) {
      body += `\\${glob[i + 1]}`;
      i += 2;
    } else {
      // Inside a class only these need escaping for the regex engine; "-" keeps its range meaning.
      body += c === '[' || c === '^' || c === '\\' ? `\\${c}` : c;
      i++;
    }
  }
  if (i >= glob.length) return null;
  const source = negate ? `(?![/])[^${body}]` : `(?![/])[${body}]`;
  return { source, end: i + 1 };
}
