// gitignore(5) semantics: line syntax, anchoring, dir-only, negation, precedence across files.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { matchIgnore, parseIgnoreLine, parseIgnoreText, type RuleSet } from '../../src/input/ignore.js';

function set(base: string, text: string, label = `${base}/.gitignore`): RuleSet {
  return { base, label, rules: parseIgnoreText(text) };
}

/** ignored / not ignored / no rule matched, for a path below /r. */
function decide(stack: RuleSet[], path: string, isDir = false): 'ignored' | 'kept' | 'no match' {
  const m = matchIgnore(stack, path, isDir);
  return m === null ? 'no match' : m.ignored ? 'ignored' : 'kept';
}

describe('parseIgnoreLine', () => {
  it('skips blank lines and comments; "\\#" is a literal hash', () => {
    assert.equal(parseIgnoreLine(''), null);
    assert.equal(parseIgnoreLine('# comment'), null);
    assert.equal(parseIgnoreLine('   '), null);
    const hash = parseIgnoreLine('\\#notes')!;
    assert.ok(hash.regex.test('#notes'));
    assert.equal(hash.negate, false);
  });

  it('reads negation, and "\\!" as a literal exclamation mark', () => {
    assert.equal(parseIgnoreLine('!keep.log')!.negate, true);
    const bang = parseIgnoreLine('\\!important')!;
    assert.equal(bang.negate, false);
    assert.ok(bang.regex.test('!important'));
  });

  it('drops trailing spaces unless escaped, and CR of CRLF files', () => {
    assert.ok(parseIgnoreLine('a.txt   ')!.regex.test('a.txt'));
    assert.ok(parseIgnoreLine('a.txt\r')!.regex.test('a.txt'));
    const escaped = parseIgnoreLine('name\\ ')!;
    assert.ok(escaped.regex.test('name '));
    assert.ok(!escaped.regex.test('name'));
  });

  it('a trailing slash means folders only', () => {
    const r = parseIgnoreLine('build/')!;
    assert.equal(r.dirOnly, true);
    assert.ok(r.regex.test('build'));
    assert.ok(r.regex.test('src/build'), 'without another slash it matches at any depth');
  });

  it('a leading or middle slash anchors the pattern to the ignore file\'s folder', () => {
    assert.ok(parseIgnoreLine('/out')!.regex.test('out'));
    assert.ok(!parseIgnoreLine('/out')!.regex.test('src/out'));
    assert.ok(parseIgnoreLine('doc/frotz')!.regex.test('doc/frotz'));
    assert.ok(!parseIgnoreLine('doc/frotz')!.regex.test('a/doc/frotz'));
    assert.ok(parseIgnoreLine('frotz')!.regex.test('a/doc/frotz'));
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
    assert.equal(m.rule.pattern, '*.log');
  });

  it('** spans folders in ignore files too', () => {
    const s = [set('/r', 'docs/**/draft.md\n**/tmp\nlogs/**\n')];
    assert.equal(decide(s, '/r/docs/draft.md'), 'ignored');
    assert.equal(decide(s, '/r/docs/a/b/draft.md'), 'ignored');
    assert.equal(decide(s, '/r/x/y/tmp', true), 'ignored');
    assert.equal(decide(s, '/r/logs/today.txt'), 'ignored');
    assert.equal(decide(s, '/r/logs', true), 'no match', 'logs/** matches what is inside, not the folder');
  });
});
