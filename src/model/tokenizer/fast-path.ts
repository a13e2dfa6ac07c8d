// Speed for book-length documents, reaching into @huggingface/tokenizers' internals (library.ts
// lists them). Both pieces compute the library's own pure functions, only remembered better, and
// both are checked against the library at load time (EncoderCore) and by
// test/model/tokenizer/fast-path.test.ts, which fails when the internals they use change.
//
//  1. WordMemo replaces the BPE model's word memo (`model.cache`), an LRU of 10,000 words whose every
//     hit deletes and re-inserts a Map entry and which thrashes on a book's vocabulary: a plain Map
//     bounded by its bytes, simply cleared when full (memo.ts).
//  2. WordFastPath, for byte-level BPE tokenizers whose pre-tokenizer is a Sequence ending in
//     ByteLevel(use_regex=false) (Qwen2/2.5/3, Llama 3): the steps before ByteLevel split the text
//     into words, and a word's ids depend on that word alone, so ids are memoised per raw word. That
//     skips the byte mapping, BPE and id lookups of every repeated word. Text holding added-token
//     text takes the library's path.
//
// Measured with `node --import tsx bench/tokenizer/fast-path.ts`: Qwen3 tokenizer, Moby Dick (1.2 MB)
// encoded once on this thread from cold memos, ids identical in all three, best of 3, on the project's
// 2-core machine while shared (load average 8):
//   library alone                6.80 s
//   + WordMemo                   3.01 s   (2.3x)
//   + WordMemo + WordFastPath    2.42 s   (2.8x)

import type { HfPreTokenizer, HfTokenizer, Json } from './library.js';
import { LibraryBpeModel } from './library.js';
import { idsBytes, TextMemo, tokensBytes } from './memo.js';

/** The BPE word memo: get/put/clear, the interface of the library's LRU cache. */
export class WordMemo extends TextMemo<string[]> {
  constructor() {
    super(tokensBytes);
  }
}

/** Puts a WordMemo in place of the library's BPE memo; false when the model is not BPE. */
export function installWordMemo(hf: HfTokenizer): boolean {
  if (!(hf.model instanceof LibraryBpeModel)) return false;
  hf.model.cache = new WordMemo();
  return true;
}

export class WordFastPath {
  private readonly memo = new TextMemo<number[]>(idsBytes);

  private constructor(
    private readonly hf: HfTokenizer,
    /** Every pre-tokenizer step but the final ByteLevel. */
    private readonly before: HfPreTokenizer[],
    private readonly byteLevel: HfPreTokenizer,
    /** Matches any added token's text; such texts are left to the library. */
    private readonly addedRe: RegExp | null,
  ) {}

  /** The fast path for this tokenizer, or null when its structure is not the one described above. */
  static derive(json: Json, config: Json, hf: HfTokenizer): WordFastPath | null {
    const model = json.model as Json;
    const pre = json.pre_tokenizer as Json | null;
    const steps = pre?.type === 'Sequence' && Array.isArray(pre.pretokenizers) ? (pre.pretokenizers as Json[]) : null;
    const last = steps?.at(-1);
    const libSteps = hf.pre_tokenizer?.tokenizers;
    if (!steps || !last || last.type !== 'ByteLevel' || last.use_regex !== false || last.add_prefix_space === true) return null;
    if (!Array.isArray(libSteps) || libSteps.length !== steps.length || libSteps.some((t) => typeof t?.pre_tokenize !== 'function')) return null;
    if (model.type !== 'BPE' || (model.fuse_unk && model.unk_token)) return null; // unknowns would fuse across words
    if (config.remove_space === true || config.do_lowercase_and_remove_accent === true) return null;
    const added = (json.added_tokens as Json[] | undefined) ?? [];
    if (added.some((t) => t.normalized === true)) return null; // matched after normalization: keep the library's order
    const contents = added.map((t) => String(t.content)).filter((c) => c.length > 0);
    const addedRe = contents.length ? new RegExp(contents.map(escapeRegExp).join('|')) : null;
    return new WordFastPath(hf, libSteps.slice(0, -1) as HfPreTokenizer[], libSteps.at(-1) as HfPreTokenizer, addedRe);
  }

  /** Whether this path may encode `text` (it holds no added-token text). */
  accepts(text: string): boolean {
    return !(this.addedRe && this.addedRe.test(text));
  }

  /** The library's ids for `text` (no special tokens added), word by remembered word. */
  encode(text: string): number[] {
    const hf = this.hf;
    const normalized = hf.normalizer ? hf.normalizer(text) : text;
    const words = this.before.reduce((list, step) => step.pre_tokenize(list, { section_index: 0 }), [normalized]);
    const out: number[] = [];
    for (const word of words) {
      let ids = this.memo.get(word);
      if (ids === undefined) {
        ids = this.wordIds(word);
        this.memo.put(word, ids);
      }
      for (let k = 0; k < ids.length; k++) out.push(ids[k]);
    }
    return out;
  }

  private wordIds(word: string): number[] {
    const model = this.hf.model;
    return model(this.byteLevel.pre_tokenize([word])).map((t) => model.tokens_to_ids.get(t) ?? model.unk_token_id ?? 0);
  }
}

export function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
