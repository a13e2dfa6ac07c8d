// The tokenizer built from a GGUF file's tokenizer.ggml.* metadata: its behaviour on its own, and
// its agreement with llama.cpp (node-llama-cpp, installed in bench/cpu/peer; skipped with the
// reason when absent) on the shared texts and on tricky strings, for small BPE and SentencePiece
// vocabularies made here and, when ../shared is there, Qwen3's and Llama 2's real ones.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { GgufFile } from '../../../src/model/gguf/file.js';
import { GgufTextTokenizer } from '../../../src/model/gguf/tokenizer.js';
import { loadTokenizer } from '../../../src/model/tokenizer.js';
import { gv, type GgufValue } from '../../../src/model/gguf/write.js';
import { sharedPath } from '../../helpers/fixtures.js';
import { loadLlamaPeer, qwen3Metadata, sentencePieceModelMetadata, smallBpe, smallSentencePiece, TRAINING_TEXT, vocabGguf, type LlamaPeer } from './vocab.js';

/** Strings where tokenizers tend to disagree. */
const TRICKY = [
  '',
  ' ',
  'a',
  'Hello world',
  ' Hello  world   ',
  'multiple\n\n\nnewlines\r\n and\ttabs\t\t here',
  '   leading and trailing spaces   ',
  'digits 1 12 123 1234 12345 3.14159 1,000,000 2024-06-01',
  "contractions: don't I'm you're we've they'll she'd IT'S DON'T",
  'naïve café déjà vu Ünïcödé Ελληνικά русский текст',
  'decomposed: cafe\u0301 nai\u0308ve',
  '中文文本 日本語のテキスト 한국어 텍스트',
  'emoji 😀👍🏽 🇫🇷 family 👨‍👩‍👧‍👦 and ✓ ★',
  'code: function add(a, b) { return a + b; } // sum\n\tif (x >= 10) { print("ten"); }',
  'symbols !@#$%^&*()_+-=[]{}|;:\'",.<>/?`~ ... --- ***',
  'special text <|im_end|> and <|im_start|>user inside and <tool_call> too',
  'zero\u200bwidth\u00a0nbsp\u3000ideographic space',
  'x'.repeat(300),
  ' '.repeat(17) + 'end',
];

interface Case {
  name: string;
  metadata: () => Record<string, GgufValue> | null;
  arch: 'qwen2' | 'llama';
  /** Texts from ../shared (skipped when absent) beyond the tricky strings. */
  shared: boolean;
}

function sharedTexts(): Array<{ name: string; text: string }> {
  const out: Array<{ name: string; text: string }> = [];
  for (const rel of ['data/gutenberg/moby_dick_pg2701.txt', 'data/gutenberg/pride_and_prejudice_pg1342.txt', 'data/gutenberg/sherlock_holmes_pg1661.txt']) {
    const p = sharedPath(rel);
    // 40,000 characters of each book (front matter, chapters, dialogue, numbers), in seconds.
    if (!p.skip) out.push({ name: rel, text: readFileSync(p.path, 'utf8').slice(0, 40_000) });
  }
  return out;
}

const qwen3 = sharedPath('models/tokenizers/qwen3/tokenizer.json');
const llama2 = sharedPath('models/tokenizers/llama2-sentencepiece/tokenizer.model');

const CASES: Case[] = [
  { name: 'small byte-level BPE (qwen2 pre-tokenizer)', metadata: () => smallBpe(300, 'qwen2'), arch: 'qwen2', shared: true },
  { name: 'small byte-level BPE (llama-bpe pre-tokenizer, whole-word lookup)', metadata: () => smallBpe(300, 'llama-bpe'), arch: 'llama', shared: true },
  { name: 'small SentencePiece (scores, byte fallback)', metadata: () => smallSentencePiece(300), arch: 'llama', shared: true },
  { name: "Qwen3's vocabulary (qwen2 pre-tokenizer)", metadata: () => (qwen3.skip ? null : qwen3Metadata(qwen3.path, 'qwen2')), arch: 'qwen2', shared: true },
  { name: "Qwen3's vocabulary with the llama-bpe pre-tokenizer", metadata: () => (qwen3.skip ? null : qwen3Metadata(qwen3.path, 'llama-bpe')), arch: 'llama', shared: false },
  { name: "Llama 2's SentencePiece vocabulary", metadata: () => (llama2.skip ? null : sentencePieceModelMetadata(llama2.path)), arch: 'llama', shared: true },
];

async function tokenizerOf(metadata: Record<string, GgufValue>, arch: 'qwen2' | 'llama'): Promise<{ path: string; tok: GgufTextTokenizer }> {
  const path = vocabGguf(metadata, arch);
  return { path, tok: new GgufTextTokenizer(await GgufFile.open(path)) };
}

describe('GGUF tokenizer', () => {
  it('byte-level BPE: ids, BOS/EOS, special tokens, decoding and the chat template', async () => {
    const { tok } = await tokenizerOf(smallBpe(), 'qwen2');
    assert.equal(tok.addBos, false);
    assert.equal(tok.idToToken(tok.eosIds[0]), '<|im_end|>');
    const im = tok.tokenToId('<|im_end|>')!;
    assert.ok(tok.isSpecial(im));
    assert.ok(!tok.isSpecial(tok.tokenToId('<tool_call>')!), 'user-defined tokens are not special');
    // Prompt text reads special tokens; document text never does.
    assert.deepEqual(tok.encode('<|im_end|>'), [im]);
    const doc = await tok.encodeSegments([{ text: 'a <|im_end|> b' } as never]);
    assert.ok(!doc.ids.includes(im));
    for (const text of TRICKY) assert.equal(tok.decode(tok.encode(text)), text, JSON.stringify(text));
    assert.equal(
      tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true }),
      '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n',
    );
    assert.deepEqual(tok.encode('x', { addSpecialTokens: true }), tok.encode('x'), 'no BOS when add_bos_token is false');
  });

  it('SentencePiece: BOS added, spaces as ▁, unknown characters as bytes', async () => {
    const { tok } = await tokenizerOf(smallSentencePiece(), 'llama');
    assert.equal(tok.addBos, true);
    assert.equal(tok.bosId, 1);
    assert.equal(tok.encode('the', { addSpecialTokens: true })[0], 1);
    const ids = tok.encode('😀');
    assert.deepEqual(ids.map((i) => tok.idToToken(i)), ['▁', '<0xF0>', '<0x9F>', '<0x98>', '<0x80>']);
    assert.equal(tok.decode(tok.encode('the  quick\tfox 😀')), 'the  quick\tfox 😀');
  });

  it('llama-bpe adds BOS unless the file says otherwise', async () => {
    const meta = smallBpe(50, 'llama-bpe');
    delete meta['tokenizer.ggml.add_bos_token'];
    assert.equal((await tokenizerOf(meta, 'llama')).tok.addBos, true);
  });

  it('loadTokenizer reads a .gguf path; worker threads encode a document to the same ids', async () => {
    const path = vocabGguf(smallBpe(200), 'qwen2');
    const tok = await loadTokenizer(path);
    assert.ok(tok instanceof GgufTextTokenizer);
    // Many segments of a few pieces each, special-token text included (document text: never special).
    const text = TRAINING_TEXT.slice(0, 60_000) + ' <|im_end|> and <tool_call> ';
    const segments = [text, text.slice(1000), 'short', ''].map((t) => ({ text: t }) as never);
    for (const parseSpecialTokens of [false, true]) {
      const here = await tok.encodeSegments(segments, { workers: 0, parseSpecialTokens });
      const pooled = await tok.encodeSegments(segments, { workers: 2, parallelThreshold: 0, parseSpecialTokens });
      assert.deepEqual(pooled, here);
    }
  });

  it('refuses unknown pre-tokenizers and tokenizer models by name', async () => {
    const pre = await GgufFile.open(vocabGguf({ ...smallBpe(10), 'tokenizer.ggml.pre': gv.str('deepseek-llm') }));
    assert.throws(() => new GgufTextTokenizer(pre), /pre-tokenizer "deepseek-llm" is not supported \(ctx reads qwen2, llama-bpe/);
    const model = await GgufFile.open(vocabGguf({ ...smallBpe(10), 'tokenizer.ggml.model': gv.str('bert') }));
    assert.throws(() => new GgufTextTokenizer(model), /tokenizer model "bert" is not supported/);
    const noPre = smallBpe(10);
    delete noPre['tokenizer.ggml.pre'];
    const missing = await GgufFile.open(vocabGguf(noPre));
    assert.throws(() => new GgufTextTokenizer(missing), /tokenizer.ggml.pre is missing/);
  });
});

describe('GGUF tokenizer agrees with llama.cpp', () => {
  let peer: LlamaPeer | string = 'not loaded';
  before(async () => {
    peer = await loadLlamaPeer();
  });
  after(async () => {
    if (typeof peer !== 'string') await peer.dispose();
  });

  for (const c of CASES) {
    it(c.name, async (t) => {
      if (typeof peer === 'string') return t.skip(peer);
      const metadata = c.metadata();
      if (!metadata) return t.skip('../shared/models/tokenizers is absent');
      const { path, tok } = await tokenizerOf(metadata, c.arch);
      const texts = [...TRICKY.map((text) => ({ name: JSON.stringify(text).slice(0, 40), text })), { name: 'training text', text: TRAINING_TEXT }];
      if (c.shared) texts.push(...sharedTexts());
      let checked = 0;
      for (const { name, text } of texts) {
        const want = await peer.tokenize(path, text, false);
        // Document text: special-token text is ordinary text to both.
        const doc = await tok.encodeSegments([{ text } as never], { workers: 0 });
        assert.deepEqual([...doc.ids], want, `${c.name}: ${name}`);
        // Prompt text: special tokens are read as such by both.
        assert.deepEqual(tok.encode(text), await peer.tokenize(path, text, true), `${c.name}: ${name} (special tokens parsed)`);
        checked += text.length;
      }
      assert.ok(checked > 1000);
    });
  }
});
