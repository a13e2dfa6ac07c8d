// Streaming decode: never half a character, and the stream equals decoding the whole.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { loadTokenizer, type TextTokenizer } from '../../../src/model/tokenizer.js';
import { StreamingDetokenizer } from '../../../src/model/tokenizer/detokenizer.js';
import { writeTinyTokenizer } from '../../../scripts/make-tiny-tokenizer.js';
import { AIDREAMS_DIR, QWEN_DIR, skipNoShared } from '../../helpers/tokenizers.js';

const tmp = mkdtempSync(join(tmpdir(), 'ctx-detokenizer-test-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('StreamingDetokenizer', () => {
  // Rare characters (𓀀 🫠 ꙮ 𝔘 🦩 鬱 龘) are several tokens even in Qwen's large vocabulary.
  const texts = ['Hello 😀 world 日本語のテキスト, naïve ✓ 🙂🙂 end', '中文 🧪 mixed 한국어 text ₿', 'rare: 𓀀🫠ꙮ 𝔘 🦩 鬱龘 done'];

  /** Streams `text` id by id; returns how often a push emitted nothing (a character was incomplete). */
  async function checkStream(tok: TextTokenizer, text: string): Promise<number> {
    const ids = tok.encode(text);
    const stream = new StreamingDetokenizer(tok);
    const chunks: string[] = [];
    let heldBack = 0;
    for (const id of ids) {
      const piece = stream.push(id);
      if (piece === '') heldBack++;
      assert.ok(!piece.includes('\uFFFD'), `half a character emitted: ${JSON.stringify(piece)}`);
      assert.ok(!/[\uD800-\uDBFF]$/.test(piece), 'split surrogate pair');
      chunks.push(piece);
    }
    chunks.push(stream.flush());
    assert.equal(chunks.join(''), tok.decode(ids, { skipSpecialTokens: true }));
    assert.equal(chunks.join(''), text);
    return heldBack;
  }

  async function checkAll(tok: TextTokenizer) {
    let heldBack = 0;
    for (const text of texts) heldBack += await checkStream(tok, text);
    assert.ok(heldBack > 0, 'multi-token characters were expected to be held back at least once');
  }

  it('tiny byte-level tokenizer: emoji and CJK come out whole', async () => {
    const dir = join(tmp, 'tiny-stream');
    writeTinyTokenizer(dir);
    await checkAll(await loadTokenizer(dir));
  });

  it('qwen3 (byte-level) and aidreams (<0xNN> byte fallback, leading-space strip)', { skip: skipNoShared }, async () => {
    for (const dir of [QWEN_DIR, AIDREAMS_DIR]) await checkAll(await loadTokenizer(dir));
  });

  it('flush gives an incomplete trailing character as U+FFFD rather than dropping it', async () => {
    const dir = join(tmp, 'tiny-flush');
    writeTinyTokenizer(dir);
    const tok = await loadTokenizer(dir);
    const ids = tok.encode('ok 😀');
    const stream = new StreamingDetokenizer(tok);
    let out = '';
    for (const id of ids.slice(0, -1)) out += stream.push(id);
    assert.equal(out, 'ok ');
    assert.match(stream.flush(), /^\uFFFD+$/);
  });
});
