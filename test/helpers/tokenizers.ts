// Real tokenizers and texts from ../shared (beside the repo), and the library on its own as the
// reference; tests that need them skip with the reason when ../shared is absent.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Tokenizer } from '@huggingface/tokenizers';

export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
export const SHARED = join(repoRoot, '..', 'shared');
export const QWEN_DIR = join(SHARED, 'models', 'tokenizers', 'qwen3');
export const AIDREAMS_DIR = join(SHARED, 'models', 'aidreams260K-hf');
export const GOLDEN = join(SHARED, 'golden', 'tokenizer', 'aidreams260K-encode.json');
export const BOOKS = join(SHARED, 'data', 'gutenberg');
export const skipNoShared = existsSync(QWEN_DIR) && existsSync(AIDREAMS_DIR) ? false : `../shared is absent (${SHARED}): no real tokenizers to test`;

export const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

/** The library on its own, encoding a whole text in one call: the reference every cut is checked against. */
export function libraryEncoder(dir: string): (text: string) => number[] {
  const tok = new Tokenizer(readJson(join(dir, 'tokenizer.json')), readJson(join(dir, 'tokenizer_config.json')));
  return (text) => (text.length ? tok.encode(text, { add_special_tokens: false }).ids : []);
}

export function book(name: string): string {
  return readFileSync(join(BOOKS, name), 'utf8');
}

/** Slices of real prose plus awkward hand-written texts. */
export function sampleTexts(): string[] {
  const texts = [
    'hello   world\n\nnew  paragraph\ttab 12345 67.89',
    'naïve café — “quotes” ε λ μ ° ö 日本語 🙂 and ünïcödé wörds',
    "It's what they'll do, isn't it? A B C d e f",
    '  leading and trailing  ',
  ];
  if (!skipNoShared) {
    for (const f of readdirSync(BOOKS).filter((f) => f.endsWith('.txt'))) {
      const text = book(f);
      for (let k = 0; k < 6; k++) {
        const start = Math.floor(((k + 1) * text.length) / 8);
        texts.push(text.slice(start, start + 4000));
      }
    }
  }
  return texts;
}

export const sameIds = (a: ArrayLike<number>, b: ArrayLike<number>) => a.length === b.length && Array.prototype.every.call(a, (v, i) => v === b[i]);

