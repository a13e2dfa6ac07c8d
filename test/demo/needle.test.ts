// The needle-language document generator (src/demo): deterministic, exact length, one planted pair at
// the requested depth, and the same documents as the Python recipe (models/recipes/needle/language.py).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FILLERS, KEYS, QUERY, SPECIALS, VALUES, WORDS, makeNeedleDocument, mulberry32 } from '../../src/demo/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('demo needle documents', () => {
  it('mulberry32 gives the same sequence as the Python twin', () => {
    // Values of language.Mulberry32 in models/recipes/needle/language.py, times 2^32.
    for (const [seed, want] of [
      [1, [2693262067, 11749833, 2265367787]],
      [2 ** 32 - 1, [3850105811, 813802916, 3073704848]],
    ] as const) {
      const r = mulberry32(seed);
      assert.deepEqual([r(), r(), r()].map((x) => x * 2 ** 32), want);
    }
  });

  it('is deterministic in its seed', () => {
    const a = makeNeedleDocument({ tokens: 500, depth: 0.3, seed: 42 });
    const b = makeNeedleDocument({ tokens: 500, depth: 0.3, seed: 42 });
    const c = makeNeedleDocument({ tokens: 500, depth: 0.3, seed: 43 });
    assert.deepEqual(a, b);
    assert.notEqual(a.text, c.text);
  });

  for (const tokens of [2, 3, 64, 257, 1000, 8192, 30000]) {
    for (const depth of [0, 0.37, 1]) {
      it(`${tokens} tokens, depth ${depth}: exact length, one pair at the right place`, () => {
        const d = makeNeedleDocument({ tokens, depth, seed: tokens + Math.round(depth * 100) });
        const words = d.text.split(/\s+/).filter(Boolean);
        assert.equal(words.length, tokens);
        assert.ok(Math.abs(words.length - tokens) <= tokens * 0.01);
        assert.ok(d.text.endsWith('\n'));
        assert.equal(d.question, `${QUERY} ${d.key}`);
        assert.equal(d.answer, d.value);
        assert.ok(KEYS.includes(d.key) && VALUES.includes(d.value));
        const keyAt = words.flatMap((w, i) => (KEYS.includes(w) ? [i] : []));
        const valAt = words.flatMap((w, i) => (VALUES.includes(w) ? [i] : []));
        assert.deepEqual(keyAt, [d.needleIndex]);
        assert.deepEqual(valAt, [d.needleIndex + 1]);
        assert.equal(words[d.needleIndex], d.key);
        assert.equal(words[d.needleIndex + 1], d.answer);
        assert.equal(d.needleIndex, Math.floor(depth * (tokens - 2) + 0.5));
        if (tokens > 2) assert.ok(Math.abs(d.needleIndex / (tokens - 2) - depth) <= 0.5 / (tokens - 2) + 1e-12);
        for (const w of words) assert.ok(w === d.key || w === d.value || FILLERS.includes(w), `unexpected word ${w}`);
      });
    }
  }

  it('rejects bad options', () => {
    assert.throws(() => makeNeedleDocument({ tokens: 1 }), RangeError);
    assert.throws(() => makeNeedleDocument({ tokens: 10.5 }), RangeError);
    assert.throws(() => makeNeedleDocument({ tokens: 10, depth: 1.5 }), RangeError);
    assert.throws(() => makeNeedleDocument({ tokens: 10, depth: Number.NaN }), RangeError);
  });

  it('vocab.ts is the recipe vocabulary (models/recipes/needle/vocab.json)', () => {
    const v = JSON.parse(readFileSync(root + 'models/recipes/needle/vocab.json', 'utf8'));
    assert.deepEqual([...SPECIALS], v.specials);
    assert.equal(QUERY, v.query);
    assert.deepEqual([...KEYS], v.keys);
    assert.deepEqual([...VALUES], v.values);
    assert.deepEqual([...FILLERS], v.fillers);
    assert.equal(WORDS.length, 512);
    assert.equal(new Set(WORDS).size, WORDS.length);
  });

  it('generates the same documents as the Python recipe', () => {
    const samples = JSON.parse(readFileSync(root + 'fixtures/demo/python-samples.json', 'utf8')) as {
      tokens: number; depth: number; seed: number; question: string; answer: string; needle_index: number; doc_ids: number[];
    }[];
    assert.ok(samples.length >= 5);
    const id = new Map(WORDS.map((w, i) => [w, i]));
    for (const s of samples) {
      const d = makeNeedleDocument({ tokens: s.tokens, depth: s.depth, seed: s.seed });
      assert.equal(d.question, s.question);
      assert.equal(d.answer, s.answer);
      assert.equal(d.needleIndex, s.needle_index);
      assert.deepEqual(d.text.split(/\s+/).filter(Boolean).map((w) => id.get(w)), s.doc_ids);
    }
  });
});
