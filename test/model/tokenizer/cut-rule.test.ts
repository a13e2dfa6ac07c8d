// The cut rule: cutting a text at its cut points never changes its ids (real tokenizers from ../shared).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadTokenizer } from '../../../src/model/tokenizer.js';
import { cutText } from '../../../src/model/tokenizer/cut-rule.js';
import { AIDREAMS_DIR, libraryEncoder, QWEN_DIR, sampleTexts, skipNoShared } from '../../helpers/tokenizers.js';

describe('cut rule: cutting never changes tokens', { skip: skipNoShared }, () => {
  for (const [name, dir] of [
    ['qwen3', QWEN_DIR],
    ['aidreams260K', AIDREAMS_DIR],
  ] as const) {
    it(`${name}: every text cut at every ~40th character encodes like the whole`, async () => {
      const tok = await loadTokenizer(dir);
      const whole = libraryEncoder(dir);
      const rule = tok.cutRule.rule;
      assert.ok(rule, tok.cutRule.reason);
      let cuts = 0;
      for (const text of sampleTexts()) {
        const pieces = cutText(text, rule, 40);
        cuts += pieces.length - 1;
        const expected = whole(text);
        assert.deepEqual(pieces.flatMap((p) => whole(p)), expected, JSON.stringify(text.slice(0, 60)));
        assert.deepEqual(tok.encode(text), expected);
      }
      assert.ok(cuts > 500, `only ${cuts} cuts were tried`);
    });
  }

  it('cuts only between two letters at a single space, keeping or dropping that space', () => {
    assert.deepEqual(cutText('ab cd ef', 'keep-space', 1), ['ab', ' cd', ' ef']);
    assert.deepEqual(cutText('ab cd ef', 'drop-space', 1), ['ab', 'cd', 'ef']);
    assert.deepEqual(cutText('a1 2b  c. d', 'keep-space', 1), ['a1 2b  c. d'], 'no letter|space|letter point');
    assert.deepEqual(cutText('short text', 'keep-space', 100), ['short text']);
  });
});
