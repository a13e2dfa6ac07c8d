// Text helpers of the renderers: cutting a streamed answer into rows that never change.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { bar, cellWidth, duration, forTerminal, planLine, takeRows } from '../../src/ui/format.js';

describe('takeRows', () => {
  it('ends rows at newlines and keeps the unfinished rest', () => {
    assert.deepEqual(takeRows('one\ntwo\nthr', 80), { rows: ['one', 'two'], rest: 'thr' });
    assert.deepEqual(takeRows('a\n\nb', 80), { rows: ['a', ''], rest: 'b' });
  });

  it('wraps text wider than the row at the last space that fits', () => {
    const { rows, rest } = takeRows('the quick brown fox jumps over it', 10);
    assert.deepEqual(rows, ['the quick', 'brown fox', 'jumps over']);
    assert.equal(rest, 'it');
    for (const r of rows) assert.ok(cellWidth(r) <= 10);
  });

  it('cuts a word longer than a row', () => {
    assert.deepEqual(takeRows('abcdefghijklmnopqrstu', 8), { rows: ['abcdefgh', 'ijklmnop'], rest: 'qrstu' });
  });

  it('gives the same rows however the text arrives (token by token or at once)', () => {
    const text = 'Call me Ishmael. Some years ago, never mind how long precisely, having little\nor no money in my purse, and nothing particular to interest me on shore, I thought I would sail about a little.';
    const whole = takeRows(text, 24);
    const rows: string[] = [];
    let rest = '';
    for (let i = 0; i < text.length; i += 3) {
      const r = takeRows(rest + text.slice(i, i + 3), 24);
      rows.push(...r.rows);
      rest = r.rest;
    }
    assert.deepEqual(rows, whole.rows);
    assert.equal(rest, whole.rest);
  });

  it('counts wide characters as two cells', () => {
    assert.equal(cellWidth('日本語'), 6);
    assert.equal(cellWidth('e\u0301'), 1);
    assert.deepEqual(takeRows('日本語日本語', 8), { rows: ['日本語日'], rest: '本語' });
  });
});

describe('formatting', () => {
  it('durations, bars and terminal-safe text', () => {
    assert.equal(duration(0.42), '0.4 s');
    assert.equal(duration(42), '42 s');
    assert.equal(duration(245), '4 min 05 s');
    assert.equal(duration(3720), '1 h 02 min');
    assert.equal(duration(NaN), '?');
    assert.equal(bar(0.5, 10), '█████░░░░░');
    assert.equal(bar(2, 4), '████');
    assert.equal(forTerminal('a\tb\x1b[2Jc\r\nd'), 'a    b[2Jc\nd');
  });
});

describe('planLine', () => {
  it('the document\'s tokens, the strategy and why auto chose it, the KV memory', () => {
    assert.equal(planLine({ documentTokens: 108_889, strategy: 'select (k 2048)', strategyReason: 'it is past the window', kvBytes: 2 * 1024 ** 3 }), '108,889 tokens · select (k 2048), auto: it is past the window · KV 2 GiB');
    assert.equal(planLine({ documentTokens: 1, strategy: 'full', kvBytes: 1024 }), '1 token · full · KV 1 KiB');
  });
});
