// The benchmark's documents: token ids of ../shared/data texts under the real Qwen tokenizer,
// written once to bench/work/cpu/tokens.json. ctx and llama.cpp are fed the same ids.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

/** At least `count` token ids: the Gutenberg books, one after another. */
export function documentTokens(shared: string, work: string, count: number): number[] {
  const path = join(work, 'tokens.json');
  if (existsSync(path)) {
    const ids = JSON.parse(readFileSync(path, 'utf8')) as number[];
    if (ids.length >= count) return ids;
  }
  const dir = join(shared, 'models', 'tokenizers', 'qwen3');
  const tok = new Tokenizer(JSON.parse(readFileSync(join(dir, 'tokenizer.json'), 'utf8')), JSON.parse(readFileSync(join(dir, 'tokenizer_config.json'), 'utf8')));
  const ids: number[] = [];
  for (const book of ['moby_dick_pg2701.txt', 'pride_and_prejudice_pg1342.txt', 'sherlock_holmes_pg1661.txt']) {
    const text = readFileSync(join(shared, 'data', 'gutenberg', book), 'utf8');
    // 4 KB pieces cut at line ends (the tokenizer is much faster on short strings).
    for (let s = 0; s < text.length && ids.length < count; ) {
      let e = Math.min(text.length, s + 4096);
      const nl = text.lastIndexOf('\n', e);
      if (e < text.length && nl > s) e = nl + 1;
      ids.push(...tok.encode(text.slice(s, e), { add_special_tokens: false }).ids);
      s = e;
    }
    if (ids.length >= count) break;
  }
  writeFileSync(path, JSON.stringify(ids));
  return ids;
}
