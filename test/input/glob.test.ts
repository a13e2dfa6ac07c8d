// Command-line globs (picomatch with ctx's options).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { globToRegExp, hasGlobChars, splitGlob } from '../../src/input/glob.js';

function matches(glob: string, path: string): boolean {
  return globToRegExp(glob).test(path);
}

describe('globToRegExp', () => {
  it('* matches within one path component only', () => {
    assert.ok(matches('*.ts', 'a.ts'));
    assert.ok(matches('*.ts', '.ts'));
    assert.ok(!matches('*.ts', 'src/a.ts'));
    assert.ok(matches('src/*.ts', 'src/a.ts'));
    assert.ok(!matches('src/*.ts', 'src/x/a.ts'));
  });

  it('? matches one character, never a slash', () => {
    assert.ok(matches('a?c', 'abc'));
    assert.ok(!matches('a?c', 'ac'));
    assert.ok(!matches('a?c', 'a/c'));
  });

  it('**/ matches zero or more folders', () => {
    assert.ok(matches('**/*.md', 'README.md'));
    assert.ok(matches('**/*.md', 'docs/a/b/x.md'));
    assert.ok(matches('docs/**/draft.md', 'docs/draft.md'));
    assert.ok(matches('docs/**/draft.md', 'docs/a/b/draft.md'));
    assert.ok(!matches('docs/**/draft.md', 'other/docs/draft.md'));
  });

  it('a trailing /** matches everything inside, not the folder itself', () => {
    assert.ok(matches('build/**', 'build/x'));
    assert.ok(matches('build/**', 'build/x/y.js'));
    assert.ok(!matches('build/**', 'build'));
    // ("build/" is not asked: the walk matches file paths, which never end in "/".)
  });

  it('** inside a component is an ordinary star', () => {
    assert.ok(matches('a**b', 'axxb'));
    assert.ok(!matches('a**b', 'a/b'));
  });

  it('character classes, negated classes and ranges; never a slash', () => {
    assert.ok(matches('file[0-9].txt', 'file7.txt'));
    assert.ok(!matches('file[0-9].txt', 'filex.txt'));
    assert.ok(matches('file[!0-9].txt', 'filex.txt'));
    assert.ok(matches('file[^0-9].txt', 'filex.txt'));
    assert.ok(!matches('file[!0-9].txt', 'file7.txt'));
    assert.ok(!matches('a[!x]b', 'a/b'));
    assert.ok(matches('[]]', ']'));
  });

  it('an unclosed [ is a literal bracket', () => {
    assert.ok(matches('a[b', 'a[b'));
  });

  it('regex metacharacters and backslash escapes are literal', () => {
    assert.ok(matches('a.b+(c)', 'a.b+(c)'));
    assert.ok(!matches('a.b', 'axb'));
    assert.ok(matches('\\*.txt', '*.txt'));
    assert.ok(!matches('\\*.txt', 'a.txt'));
    assert.ok(matches('what\\?', 'what?'));
  });

  it('parentheses, "|", braces and "!" are literal (picomatch would read the first two as regex syntax)', () => {
    assert.ok(matches('report (1)*.pdf', 'report (1).pdf'));
    assert.ok(!matches('report (1)*.pdf', 'report 1.pdf'));
    assert.ok(matches('a(b|c)*', 'a(b|c)x'));
    assert.ok(!matches('a(b|c)*', 'ab'));
    assert.ok(matches('{a,b}.txt', '{a,b}.txt'));
    assert.ok(!matches('{a,b}.txt', 'a.txt'));
    assert.ok(matches('!x', '!x'));
  });
});

describe('hasGlobChars and splitGlob', () => {
  it('finds unescaped metacharacters', () => {
    assert.equal(hasGlobChars('src/*.ts'), true);
    assert.equal(hasGlobChars('a?'), true);
    assert.equal(hasGlobChars('[ab]'), true);
    assert.equal(hasGlobChars('plain/path.txt'), false);
    assert.equal(hasGlobChars('escaped\\*'), false);
    assert.equal(hasGlobChars('report (1).pdf'), false);
    assert.equal(hasGlobChars('{a,b}|c.txt'), false);
  });

  it('splits off the folder to walk', () => {
    assert.deepEqual(splitGlob('src/**/*.ts'), { base: 'src', pattern: '**/*.ts' });
    assert.deepEqual(splitGlob('*.md'), { base: '.', pattern: '*.md' });
    assert.deepEqual(splitGlob('/tmp/a*.txt'), { base: '/tmp', pattern: 'a*.txt' });
    assert.deepEqual(splitGlob('/*.txt'), { base: '/', pattern: '*.txt' });
    assert.deepEqual(splitGlob('a/b/c*/d.txt'), { base: 'a/b', pattern: 'c*/d.txt' });
    assert.deepEqual(splitGlob('docs (old)/v1|v2/*.md'), { base: 'docs (old)/v1|v2', pattern: '*.md' });
  });
});
