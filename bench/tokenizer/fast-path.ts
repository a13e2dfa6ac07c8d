// What the tokenizer's fast path (src/model/tokenizer/fast-path.ts) buys: Moby Dick (1.2 MB) encoded
// once on this thread with the Qwen3 tokenizer, by the library alone, with ctx's word memo, and with
// the memo and the word fast path. Each run starts from a freshly loaded tokenizer (cold memos), as a
// book read once does; the best of three is printed. Needs ../shared (the tokenizer and the book).
//
//   node --import tsx bench/tokenizer/fast-path.ts
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cutText } from '../../src/model/tokenizer/cut-rule.js';
import { loadEncoderCore, type EncoderCoreOptions } from '../../src/model/tokenizer/encoder.js';
import { PIECE_CHARS } from '../../src/model/tokenizer/pieces.js';
import { BOOKS, QWEN_DIR } from '../../test/helpers/tokenizers.js';

const text = readFileSync(join(BOOKS, 'moby_dick_pg2701.txt'), 'utf8');
const variants: Array<[string, EncoderCoreOptions]> = [
  ['library alone', { wordMemo: false, fastPath: false }],
  ['+ WordMemo', { wordMemo: true, fastPath: false }],
  ['+ WordMemo + WordFastPath', { wordMemo: true, fastPath: true }],
];

let reference: number[] | null = null;
for (const [name, opts] of variants) {
  let best = Infinity;
  for (let run = 0; run < 3; run++) {
    const core = loadEncoderCore(QWEN_DIR, opts);
    const t0 = performance.now();
    // In pieces, as encodeSegments hands them to the encoder.
    const ids: number[] = [];
    for (const piece of cutText(text, core.cut.rule!, PIECE_CHARS)) for (const id of core.encodeDocumentText(piece)) ids.push(id);
    best = Math.min(best, performance.now() - t0);
    if (reference === null) reference = ids;
    else if (ids.length !== reference.length || ids.some((id, i) => id !== reference![i])) throw new Error(`${name}: ids differ from the library's`);
  }
  const mbPerS = text.length / 1e6 / (best / 1000);
  console.log(`${name.padEnd(28)} ${(best / 1000).toFixed(2)} s  ${mbPerS.toFixed(2)} M chars/s  (${reference!.length} ids)`);
}
