// The demo model's tokenizer (models/needle-demo/tokenizer.json): one word, one token; loads in
// @huggingface/tokenizers; gives the recipe's ids for generated documents; decodes with spaces.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';
import { QUERY, WORDS, demoModelDir, makeNeedleDocument } from '../../src/demo/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dir = demoModelDir();
const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));
const tokenizer = new Tokenizer(readJson(join(dir, 'tokenizer.json')), readJson(join(dir, 'tokenizer_config.json')));
const BOS = 1;
const EOS = 2;
const enc = (text: string) => tokenizer.encode(text, { add_special_tokens: false }).ids;

describe('demo tokenizer', () => {
  it('has the vocabulary of src/demo in id order', () => {
    for (let i = 0; i < WORDS.length; i++) assert.equal(tokenizer.id_to_token(i), WORDS[i], `id ${i}`);
    assert.equal(tokenizer.token_to_id('<s>'), BOS);
    assert.equal(tokenizer.token_to_id('</s>'), EOS);
    const config = readJson(join(dir, 'config.json'));
    assert.equal(config.vocab_size, WORDS.length);
    assert.equal(config.bos_token_id, BOS);
    assert.equal(config.eos_token_id, EOS);
    const tc = readJson(join(dir, 'tokenizer_config.json'));
    assert.equal(tc.bos_token, '<s>');
    assert.equal(tc.eos_token, '</s>');
    assert.equal(tc.chat_template, undefined, 'the demo model is prompted raw');
  });

  it('encodes a typed question word by word', () => {
    assert.deepEqual(enc(`${QUERY} Alice`), [WORDS.indexOf(QUERY), WORDS.indexOf('Alice')]);
    assert.deepEqual(enc(`  ${QUERY}\n\tAlice  `), enc(`${QUERY} Alice`));
    // add_special_tokens (the default) puts <s> in front, as the model was trained
    assert.deepEqual(tokenizer.encode(`${QUERY} Alice`).ids, [BOS, ...enc(`${QUERY} Alice`)]);
    // words outside the language are <unk>, one per word
    assert.deepEqual(enc('recall Zebedee?'), [WORDS.indexOf(QUERY), WORDS.indexOf('<unk>')]);
  });

  it('round-trips text and ids', () => {
    const d = makeNeedleDocument({ tokens: 3000, depth: 0.4, seed: 9 });
    const ids = enc(d.text);
    assert.equal(ids.length, 3000);
    const text = tokenizer.decode(ids);
    assert.equal(text, d.text.trim().split(/\s+/).join(' '));
    assert.deepEqual(enc(text), ids);
    for (let i = 0; i < WORDS.length; i++) {
      if (i <= 3) continue; // specials
      assert.deepEqual(enc(WORDS[i]), [i]);
    }
    // an answer as ctx would print it: the value, then </s> left out
    assert.equal(tokenizer.decode([WORDS.indexOf(d.value), EOS], { skip_special_tokens: true }), d.value);
  });

  it("gives the Python recipe's ids for generated documents", () => {
    const samples = readJson(join(root, 'fixtures/demo/python-samples.json')) as {
      tokens: number; depth: number; seed: number; facts: unknown[]; distractors: unknown[]; doc_ids: number[]; question_ids: number[]; answer_ids: number[];
    }[];
    for (const s of samples) {
      const d = makeNeedleDocument({ tokens: s.tokens, depth: s.depth, seed: s.seed, facts: s.facts.length, distractors: s.distractors.length });
      assert.deepEqual(enc(d.text), s.doc_ids);
      assert.deepEqual(enc(d.question), s.question_ids);
      assert.deepEqual(s.answer_ids, [...enc(d.answer), EOS]);
      // the prompt the model was trained on: <s> document question
      assert.deepEqual(tokenizer.encode(d.text).ids, [BOS, ...s.doc_ids]);
    }
  });
});
