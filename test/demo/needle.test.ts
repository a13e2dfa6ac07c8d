// The needle-language document generator (src/demo): deterministic, exact length, the asked fact at the
// requested depth, distinct names and numbers, distractors without a number, and the same documents as
// the Python recipe (models/recipes/needle/language.py).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { FILLERS, KEYS, QUERY, SPECIALS, VALUES, WORDS, askAbout, makeNeedleDocument, mulberry32 } from '../../src/demo/index.js';

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

  for (const [tokens, facts, distractors] of [[10, 4, 2], [300, 4, 4], [5000, 8, 6], [64, 1, 3]] as const) {
    it(`${tokens} tokens, ${facts} facts, ${distractors} distractors: every name once, numbers only after facts`, () => {
      const d = makeNeedleDocument({ tokens, depth: 0.4, seed: tokens + facts, facts, distractors });
      const words = d.text.split(/\s+/).filter(Boolean);
      assert.equal(words.length, tokens);
      assert.equal(d.facts.length, facts);
      assert.equal(d.distractors.length, distractors);
      const names = [...d.facts, ...d.distractors].map((f) => f.key);
      assert.equal(new Set(names).size, names.length, 'names are distinct');
      assert.equal(new Set(d.facts.map((f) => f.value)).size, facts, 'numbers are distinct');
      for (const f of d.facts) {
        assert.equal(words[f.index], f.key);
        assert.equal(words[f.index + 1], f.value);
      }
      for (const f of d.distractors) {
        assert.equal(words[f.index], f.key);
        assert.ok(!VALUES.includes(words[f.index + 1] ?? ''), `distractor ${f.key} is followed by a number`);
      }
      const keyAt = words.flatMap((w, i) => (KEYS.includes(w) ? [i] : [])).sort((a, b) => a - b);
      assert.deepEqual(keyAt, [...d.facts, ...d.distractors].map((f) => f.index).sort((a, b) => a - b));
      assert.equal(words.filter((w) => VALUES.includes(w)).length, facts);
      assert.equal(d.question, `${QUERY} ${d.facts[0].key}`);
      assert.equal(d.answer, d.facts[0].value);
      assert.deepEqual(askAbout(d, facts - 1), { question: `${QUERY} ${d.facts[facts - 1].key}`, answer: d.facts[facts - 1].value });
    });
  }

  it('rejects bad options', () => {
    assert.throws(() => makeNeedleDocument({ tokens: 9, facts: 4, distractors: 2 }), RangeError);
    assert.throws(() => makeNeedleDocument({ tokens: 100, facts: 0 }), RangeError);
    assert.throws(() => makeNeedleDocument({ tokens: 100, facts: 60, distractors: 5 }), RangeError);
    assert.throws(() => makeNeedleDocument({ tokens: 100, facts: 2.5 }), RangeError);
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
      facts: [string, string, number][]; distractors: [string, number][];
    }[];
    assert.ok(samples.length >= 10);
    assert.ok(samples.some((s) => s.facts.length >= 4 && s.distractors.length >= 1));
    const id = new Map(WORDS.map((w, i) => [w, i]));
    for (const s of samples) {
      const d = makeNeedleDocument({ tokens: s.tokens, depth: s.depth, seed: s.seed, facts: s.facts.length, distractors: s.distractors.length });
      assert.deepEqual(d.facts.map((f) => [f.key, f.value, f.index]), s.facts);
      assert.deepEqual(d.distractors.map((f) => [f.key, f.index]), s.distractors);
      assert.equal(d.question, s.question);
      assert.equal(d.answer, s.answer);
      assert.equal(d.needleIndex, s.needle_index);
      assert.deepEqual(d.text.split(/\s+/).filter(Boolean).map((w) => id.get(w)), s.doc_ids);
    }
  });
});
