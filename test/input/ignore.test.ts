// gitignore(5) semantics: line syntax, anchoring, dir-only, negation, precedence across files.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { enteringFolder, matchIgnore, ruleSet, type RuleSet } from '../../src/input/ignore.js';

function set(base: string, text: string, label = `${base}/.gitignore`): RuleSet {
  return ruleSet(base, label, text);
}

/** ignored / not ignored / no rule matched, for a path below /r. */
function decide(stack: RuleSet[], path: string, isDir = false): 'ignored' | 'kept' | 'no match' {
  const m = matchIgnore(stack, path, isDir);
  return m === null ? 'no match' : m.ignored ? 'ignored' : 'kept';
}

/** Whether the one-line ignore file `line` at /r ignores /r/<rel>. */
function lineIgnores(line: string, rel: string, isDir = false): boolean {
  return decide([set('/r', line)], `/r/${rel}`, isDir) === 'ignored';
}

// Line syntax: these cases once tested a hand-written parser; they now hold the `ignore` package to
// the same behaviour.
describe('ignore-file lines', () => {
  it('skips blank lines and comments; "\\#" is a literal hash', () => {
    assert.equal(decide([set('/r', '')], '/r/x'), 'no match');
    assert.equal(decide([set('/r', '# comment')], '/r/# comment'), 'no match');
    assert.equal(decide([set('/r', '   ')], '/r/   '), 'no match');
    assert.ok(lineIgnores('\\#notes', '#notes'));
  });

  it('reads negation, and "\\!" as a literal exclamation mark', () => {
    assert.equal(decide([set('/r', '*.log\n!keep.log')], '/r/keep.log'), 'kept');
    assert.ok(lineIgnores('\\!important', '!important'));
  });

  it('drops trailing spaces unless escaped, and CR of CRLF files', () => {
    assert.ok(lineIgnores('a.txt   ', 'a.txt'));
    assert.ok(lineIgnores('a.txt\r', 'a.txt'));
    assert.ok(lineIgnores('name\\ ', 'name '));
    assert.ok(!lineIgnores('name\\ ', 'name'));
  });

  it('a trailing slash means folders only', () => {
    assert.ok(lineIgnores('build/', 'build', true));
    assert.ok(!lineIgnores('build/', 'build', false));
    assert.ok(lineIgnores('build/', 'src/build', true), 'without another slash it matches at any depth');
  });

  it("a leading or middle slash anchors the pattern to the ignore file's folder", () => {
    assert.ok(lineIgnores('/out', 'out'));
    assert.ok(!lineIgnores('/out', 'src/out'));
    assert.ok(lineIgnores('doc/frotz', 'doc/frotz'));
    assert.ok(!lineIgnores('doc/frotz', 'a/doc/frotz'));
    assert.ok(lineIgnores('frotz', 'a/doc/frotz'));
  });

  it('matches case-sensitively, as git does on Linux', () => {
    assert.ok(!lineIgnores('*.LOG', 'app.log'));
  });
});

describe('matchIgnore', () => {
  it('the last matching rule wins, so "!" re-includes', () => {
    const s = [set('/r', '*.log\n!keep.log\n')];
    assert.equal(decide(s, '/r/app.log'), 'ignored');
    assert.equal(decide(s, '/r/keep.log'), 'kept');
    assert.equal(decide(s, '/r/sub/keep.log'), 'kept');
    assert.equal(decide(s, '/r/readme.md'), 'no match');
  });

  it('order matters: a negation before the rule it targets does nothing', () => {
    const s = [set('/r', '!keep.log\n*.log\n')];
    assert.equal(decide(s, '/r/keep.log'), 'ignored');
  });

  it('dir-only rules leave files of the same name alone', () => {
    const s = [set('/r', 'cache/\n')];
    assert.equal(decide(s, '/r/cache', true), 'ignored');
    assert.equal(decide(s, '/r/cache', false), 'no match');
  });

  it('patterns are relative to the folder of their ignore file', () => {
    const s = [set('/r', ''), set('/r/src', '/gen\nsub/x.ts\n')];
    assert.equal(decide(s, '/r/src/gen', true), 'ignored');
    assert.equal(decide(s, '/r/gen', true), 'no match', 'src/.gitignore does not reach outside src/');
    assert.equal(decide(s, '/r/src/sub/x.ts'), 'ignored');
    assert.equal(decide(s, '/r/src/other/sub/x.ts'), 'no match');
  });

  it('a deeper ignore file wins over a shallower one', () => {
    const s = [set('/r', '*.log\n'), set('/r/src', '!important.log\n')];
    assert.equal(decide(s, '/r/src/important.log'), 'kept');
    assert.equal(decide(s, '/r/src/other.log'), 'ignored');
    assert.equal(decide(s, '/r/important.log'), 'ignored');
  });

  it('reports the rule and its file', () => {
    const m = matchIgnore([set('/r', '*.log\n', 'repo/.gitignore')], '/r/a.log', false)!;
    assert.equal(m.label, 'repo/.gitignore');
    assert.ok(m.ignored);
    assert.equal(m.pattern, '*.log');
  });

  it('** spans folders in ignore files too', () => {
    const s = [set('/r', 'docs/**/draft.md\n**/tmp\nlogs/**\n')];
    assert.equal(decide(s, '/r/docs/draft.md'), 'ignored');
    assert.equal(decide(s, '/r/docs/a/b/draft.md'), 'ignored');
    assert.equal(decide(s, '/r/x/y/tmp', true), 'ignored');
    assert.equal(decide(s, '/r/logs/today.txt'), 'ignored');
    assert.equal(decide(s, '/r/logs', true), 'no match', 'logs/** matches what is inside, not the folder');
  });

  it('an ignore file above a named folder applies below it, but does not exclude the folder itself', () => {
    const above = enteringFolder(set('/r', 'build/\n*.log\n/build/logs/old/\n'), '/r/build/logs');
    assert.equal(decide([above], '/r/build/logs/a.txt'), 'no match');
    assert.equal(decide([above], '/r/build/logs/a.log'), 'ignored');
    assert.equal(decide([above], '/r/build/logs/old', true), 'ignored');
    assert.equal(decide([set('/r', 'build/\n')], '/r/build/logs/a.txt'), 'ignored', 'without it, the parent rule reaches down');
  });
});
