// The parts of @huggingface/tokenizers 0.2.0 that ctx uses, typed. The package's bundled .d.ts files
// import each other without file extensions, which NodeNext resolution does not follow, so TypeScript
// sees its exports as `any`; these interfaces state the shapes instead. Models, normalizers and
// pre-tokenizers are callable objects in that library.
//
// Only `encode`, `decode`, `token_to_id`, `id_to_token` and the constructor are the library's public
// API. The rest (the BPE model's `cache`, `merges`, `tokens_to_ids`, a Sequence pre-tokenizer's
// `tokenizers`) are its internals, used by fast-path.ts and cut-rule.ts for speed; the test
// test/model/tokenizer/fast-path.test.ts fails when they change.

import * as hfTokenizers from '@huggingface/tokenizers';

export type Json = Record<string, unknown>;

export interface HfModel {
  (words: string[]): string[];
  vocab: string[];
  tokens_to_ids: Map<string, number>;
  unk_token_id?: number;
}

/** The BPE model; `cache` is its memo of word -> tokens (an LRU of 10,000 words in 0.2.0). */
export interface HfBpeModel extends HfModel {
  merges: [string, string][];
  cache: { get(k: string): string[] | undefined; put(k: string, v: string[]): void; clear(): void };
}

/** A pre-tokenizer step; `pre_tokenize` maps a list of words to the next list. */
export interface HfPreTokenizer {
  (text: string, options?: { section_index?: number }): string[];
  pre_tokenize(words: string[], options?: { section_index?: number }): string[];
  /** Present on Sequence: its steps. */
  tokenizers?: (HfPreTokenizer | null)[];
}

export interface HfTokenizer {
  model: HfModel;
  normalizer: ((text: string) => string) | null;
  pre_tokenizer: HfPreTokenizer | null;
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
  decode(ids: number[], options?: { skip_special_tokens?: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
}

export const LibraryTokenizer = hfTokenizers.Tokenizer as unknown as new (json: object, config: object) => HfTokenizer;
export const LibraryBpeModel = (hfTokenizers as unknown as { BPE: abstract new (...args: never[]) => HfBpeModel }).BPE;

/** The library's ids for `text` with no special tokens added: the reference every faster path must equal. */
export function libraryIds(hf: HfTokenizer, text: string): number[] {
  return hf.encode(text, { add_special_tokens: false }).ids;
}
