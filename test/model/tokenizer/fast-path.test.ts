// The fast path reaches into @huggingface/tokenizers' internals (src/model/tokenizer/library.ts lists
// them). When the library changes them, ctx would quietly fall back to the slow path, or worse; these
// tests fail loudly instead. They need no ../shared: the tiny tokenizer is rebuilt in Qwen's shape
// (a Sequence of a Split regex and ByteLevel without its own regex).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadEncoderCore } from '../../../src/model/tokenizer/encoder.js';
import { WordMemo } from '../../../src/model/tokenizer/fast-path.js';
import { LibraryBpeModel, LibraryTokenizer, libraryIds } from '../../../src/model/tokenizer/library.js';
import { buildTinyTokenizer } from '../../../scripts/make-tiny-tokenizer.js';
import { QWEN_DIR, skipNoShared } from '../../helpers/tokenizers.js';

const tmp = mkdtempSync(join(tmpdir(), 'ctx-fast-path-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

/** The tiny tokenizer with Qwen's pre-tokenizer shape: Sequence[Split(GPT-2 words), ByteLevel(use_regex=false)]. */
function qwenShaped(): { dir: string; json: Record<string, unknown>; config: Record<string, unknown> } {
  const { tokenizer, config } = buildTinyTokenizer() as unknown as { tokenizer: Record<string, unknown>; config: Record<string, unknown> };
  const json = {
    ...tokenizer,
    normalizer: { type: 'NFC' },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+" }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
  };
  const dir = join(tmp, 'qwen-shaped');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(json));
  writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify(config ?? {}));
  return { dir, json, config: config ?? {} };
}

const TEXTS = [
  'The quick brown fox jumps over the lazy dog, and then it sleeps. The dog does not.',
  "naïve café, it's 2024: 日本語 😀 and <|im_end|> as text\n\n  spaced   out  ",
];

describe('the library internals the fast path uses (@huggingface/tokenizers)', () => {
  it('still has them, with the shapes ctx relies on', () => {
    const { json, config } = qwenShaped();
    const hf = new LibraryTokenizer(json, config);
    assert.ok(hf.model instanceof LibraryBpeModel, 'the BPE model class is exported as BPE');
    const bpe = hf.model as InstanceType<typeof LibraryBpeModel>;
    assert.ok(bpe.tokens_to_ids instanceof Map, 'model.tokens_to_ids is a Map');
    assert.ok(Array.isArray(bpe.merges) && Array.isArray(bpe.merges[0]), 'model.merges is a list of pairs');
    assert.equal(typeof bpe.cache?.get, 'function', 'model.cache has get/put (the word memo ctx replaces)');
    assert.equal(typeof bpe.cache?.put, 'function');
    assert.equal(typeof hf.model, 'function', 'the model is callable on a list of words');
    const steps = hf.pre_tokenizer?.tokenizers;
    assert.ok(Array.isArray(steps) && steps.length === 2, 'a Sequence pre-tokenizer keeps its steps in .tokenizers');
    assert.ok(steps.every((s) => typeof s?.pre_tokenize === 'function'), 'each step has pre_tokenize(words)');
    assert.equal(typeof hf.normalizer, 'function', 'the normalizer is callable');
  });

  it('are in use: the word memo replaces the library cache and the fast path is on, giving the library ids', () => {
    const { dir, json, config } = qwenShaped();
    const core = loadEncoderCore(dir);
    assert.ok((core.hf.model as unknown as { cache: unknown }).cache instanceof WordMemo, 'WordMemo installed');
    assert.equal(core.fastPath, true, 'the fast path switched itself off: the library internals changed');
    const library = new LibraryTokenizer(json, config);
    for (const text of TEXTS) assert.deepEqual(core.encodeText(text), libraryIds(library, text), JSON.stringify(text));
  });

  it('Qwen3 itself takes the fast path', { skip: skipNoShared }, () => {
    assert.equal(loadEncoderCore(QWEN_DIR).fastPath, true);
  });
});
