// Command-line globs (`ctx ask 'src/**/*.ts'`), matched by picomatch:
//   *    any run of characters except "/"
//   ?    one character except "/"
//   [..] one character from a set ([!..] or [^..] negates); never "/"
//   **   any number of whole path components: "**/x", "a/**/b", "a/**"
//   \c   the character c itself
// Everything else is literal: no {a,b} braces, no extglobs, no "!" negation, as before picomatch.
// (Ignore files have their own matcher, the `ignore` package: see ignore.ts.)
//
// Two picomatch behaviours are adjusted, both seen on picomatch 4.0.7:
//   - "(", ")" and "|" pass into its regular expression as a group and an alternation, even with
//     extglobs off: 'report (1)*.pdf' would not match "report (1).pdf". They are escaped first.
//   - "[!0-9]" is a negated class only with `posix: true`; without it "file[!0-9].txt" matched "file7.txt".
// test/input/glob.test.ts holds each of these cases.

import picomatch from 'picomatch';

const OPTIONS: picomatch.PicomatchOptions = {
  dot: true, // "*.ts" matches ".ts", as in a shell with dotglob: ctx's walk applies ignore rules instead
  noextglob: true,
  nobrace: true,
  nonegate: true,
  posix: true,
  strictSlashes: true,
};

/**
 * Escapes what picomatch would otherwise read as regular-expression syntax (see above), and braces,
 * which `nobrace` keeps literal in matching but picomatch.scan still counts as glob syntax.
 */
function literalParens(glob: string): string {
  return glob.replace(/\\.|[()|{}]/g, (m) => (m.length === 2 ? m : `\\${m}`));
}

/** True when `text` holds an unescaped glob metacharacter. */
export function hasGlobChars(text: string): boolean {
  return picomatch.scan(literalParens(text), OPTIONS).isGlob;
}

/** A compiled glob matching whole "/"-separated relative paths ("src/a.ts"). */
export function globToRegExp(glob: string): RegExp {
  return picomatch.makeRe(literalParens(glob), OPTIONS);
}

/**
 * Splits a command-line glob into the folder to walk and the pattern below it:
 * "src/**\/*.ts" → { base: "src", pattern: "**\/*.ts" }; "/tmp/a*.txt" → { base: "/tmp", ... }.
 */
export function splitGlob(spec: string): { base: string; pattern: string } {
  const parts = spec.split('/');
  let n = 0;
  while (n < parts.length - 1 && !hasGlobChars(parts[n]!)) n++;
  let base = parts.slice(0, n).join('/');
  if (spec.startsWith('/') && base === '') base = '/';
  return { base: base === '' ? '.' : base, pattern: parts.slice(n).join('/') };
}
