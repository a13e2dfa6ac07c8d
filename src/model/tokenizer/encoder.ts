// The encoding core: text -> ids, identical to @huggingface/tokenizers, faster on long documents, and
// with document text kept apart from special tokens. Shared by the main thread (tokenizer.ts) and the
// worker threads (worker.ts). It runs the tokenizer's own regexes, so main-thread callers bound each
// call with a deadline (bounded-run.ts); workers are bounded by the pool.
//
// Document text never turns into special tokens: a PDF that contains the literal text "<|im_end|>"
// must not end the user's turn. Special-token text in documents is encoded as the ordinary
// characters it is (transformers' split_special_tokens=True has the same intent).

import { CtxError } from '../../errors.js';
import { CUT_PROBES, cutText, deriveCutRule, type CutDecision } from './cut-rule.js';
import { escapeRegExp, installWordMemo, WordFastPath } from './fast-path.js';
import { readTokenizerFiles } from './files.js';
import { type HfTokenizer, type Json, LibraryTokenizer, libraryIds } from './library.js';
import { idsBytes, TextMemo } from './memo.js';

/** Piece size on the word fast path: only bounds what one added token can send to the slow path. */
const FAST_PIECE = 1 << 16;
/** Longer pieces (runs without a cut point) are encoded but not memoised. */
const MEMO_PIECE_CHARS = 64;

export interface EncoderCoreOptions {
  /** Replace the library's BPE memo (fast-path.ts). Default true; off only to measure it. */
  wordMemo?: boolean;
  /** Use the word fast path where the tokenizer allows (fast-path.ts). Default true; off only to measure it. */
  fastPath?: boolean;
}

export class EncoderCore {
  readonly hf: HfTokenizer;
  readonly cut: CutDecision;
  readonly specialIds: Set<number>;
  /** Whether the word fast path is in use (it is switched off when it disagrees with the library). */
  readonly fastPath: boolean;
  private readonly fast: WordFastPath | null;
  private readonly specialRe: RegExp | null;
  private readonly pieceIds = new TextMemo<number[]>(idsBytes);

  constructor(json: Json, config: Json, jsonPath: string, opts: EncoderCoreOptions = {}) {
    try {
      this.hf = new LibraryTokenizer(json, config);
    } catch (e) {
      throw new CtxError('model', `tokenizer.json is not supported: ${(e as Error).message}`, { path: jsonPath, cause: e });
    }
    if (opts.wordMemo !== false) installWordMemo(this.hf);

    const specials = ((json.added_tokens as Json[] | undefined) ?? []).filter((t) => t.special === true);
    this.specialIds = new Set(specials.map((t) => Number(t.id)));
    // Longest first, so "<|im_end|>" wins over any special that is its prefix.
    const contents = specials.map((t) => String(t.content)).filter((c) => c.length > 0).sort((a, b) => b.length - a.length);
    this.specialRe = contents.length ? new RegExp(contents.map(escapeRegExp).join('|'), 'g') : null;
    this.cut = deriveCutRule(json, this.hf);
    let fast = opts.fastPath === false ? null : WordFastPath.derive(json, config, this.hf);
    // Belt and braces: the fast path must agree with the library on the probe texts, or it is off.
    if (fast && CUT_PROBES.some((p) => !sameList(fast!.encode(p), libraryIds(this.hf, p)))) fast = null;
    this.fast = fast;
    this.fastPath = fast !== null;
  }

  /** Special-token text read as special tokens, no BOS/EOS added: the library's encode, or the same ids faster. */
  private encodeLibrary(text: string): number[] {
    if (text.length === 0) return [];
    if (this.fast && this.fast.accepts(text)) return this.fast.encode(text);
    return libraryIds(this.hf, text);
  }

  /**
   * Same ids as the library's encode(text) without special tokens added, faster:
   *  - with the word fast path: long texts are cut into large pieces, so that added-token text in
   *    one place sends only its own piece down the library's slow path;
   *  - otherwise, with a cut rule: the text is cut at every cut point (one word, roughly, per piece)
   *    and pieces are memoised. For sentencepiece-style tokenizers this also replaces one BPE run
   *    over the whole text (a single "word" to the library) by many short, mostly repeated ones.
   */
  encodeText(text: string): number[] {
    const rule = this.cut.rule;
    if (rule === null || (this.fast && text.length <= FAST_PIECE)) return this.encodeLibrary(text);
    const out: number[] = [];
    if (this.fast) {
      for (const piece of cutText(text, rule, FAST_PIECE)) for (const id of this.encodeLibrary(piece)) out.push(id);
      return out;
    }
    for (const piece of cutText(text, rule, 1)) {
      let ids = this.pieceIds.get(piece);
      if (ids === undefined) {
        ids = this.encodeLibrary(piece);
        if (piece.length <= MEMO_PIECE_CHARS) this.pieceIds.put(piece, ids);
      }
      for (let k = 0; k < ids.length; k++) out.push(ids[k]);
    }
    return out;
  }

  /**
   * Encodes text as data: special-token strings are tokenized as the characters they are. The text is
   * split around them; each special string goes through the tokenizer's pipeline without the
   * added-token matcher (normalizer -> pre-tokenizer -> model).
   */
  encodeDocumentText(text: string): number[] {
    const re = this.specialRe;
    if (re === null) return this.encodeText(text);
    re.lastIndex = 0;
    if (!re.test(text)) return this.encodeText(text);
    const out: number[] = [];
    let last = 0;
    re.lastIndex = 0;
    for (const m of text.matchAll(re)) {
      for (const id of this.encodeText(text.slice(last, m.index))) out.push(id);
      for (const id of this.encodePlain(m[0])) out.push(id);
      last = m.index! + m[0].length;
    }
    for (const id of this.encodeText(text.slice(last))) out.push(id);
    return out;
  }

  private encodePlain(text: string): number[] {
    const hf = this.hf;
    const model = hf.model;
    const normalized = hf.normalizer ? hf.normalizer(text) : text;
    const words = hf.pre_tokenizer ? hf.pre_tokenizer(normalized, { section_index: 0 }) : [normalized];
    return model(words).map((t) => model.tokens_to_ids.get(t) ?? model.unk_token_id ?? 0);
  }
}

function sameList(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The encoding core of a model folder (the worker loads its own). */
export function loadEncoderCore(dir: string, opts: EncoderCoreOptions = {}): EncoderCore {
  const { json, config, jsonPath } = readTokenizerFiles(dir);
  return new EncoderCore(json, config, jsonPath, opts);
}
