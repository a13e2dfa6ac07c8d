// Text <-> token ids for a model folder (tokenizer.json + tokenizer_config.json), on top of
// @huggingface/tokenizers. Three things are added to the library:
//
//  1. Long documents are encoded in pieces (in worker threads when large), with ids identical to
//     encoding each segment whole. That is only possible where a cut cannot change tokenization, so
//     each tokenizer gets a "cut rule" (see deriveCutRule) that names the only places ctx may cut,
//     or none at all. Pieces and words repeat, so their ids are memoised (EncoderCore).
//  2. Document text never turns into special tokens: a PDF that contains the literal text
//     "<|im_end|>" must not end the user's turn. Special-token text in documents is encoded as the
//     ordinary characters it is (transformers' split_special_tokens=True has the same intent).
//  3. Streaming decode (StreamingDetokenizer) that never emits half a character.

import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as hfTokenizers from '@huggingface/tokenizers';
import { CtxError, fsError } from '../errors.js';
import type { Segment } from '../input/document.js';
import { ChatTemplate, findChatTemplate, specialTokenString, type ChatMessage, type ChatTemplateOptions } from './chat-template.js';

type Json = Record<string, unknown>;

/**
 * The parts of @huggingface/tokenizers 0.2.0 that ctx uses. The package's bundled .d.ts files import
 * each other without file extensions, which NodeNext resolution does not follow, so TypeScript sees
 * its exports as `any`; this states the shapes instead. Models, normalizers and pre-tokenizers are
 * callable objects in that library.
 */
interface HfModel {
  (words: string[]): string[];
  vocab: string[];
  tokens_to_ids: Map<string, number>;
  unk_token_id?: number;
}
interface HfBpeModel extends HfModel {
  merges: [string, string][];
  cache: { get(k: string): string[] | undefined; put(k: string, v: string[]): void; clear(): void };
}
/** A pre-tokenizer step; `pre_tokenize` maps a list of words to the next list. */
interface HfPreTokenizer {
  (text: string, options?: { section_index?: number }): string[];
  pre_tokenize(words: string[], options?: { section_index?: number }): string[];
  /** Present on Sequence: its steps. */
  tokenizers?: (HfPreTokenizer | null)[];
}
interface HfTokenizer {
  model: HfModel;
  normalizer: ((text: string) => string) | null;
  pre_tokenizer: HfPreTokenizer | null;
  encode(text: string, options?: { add_special_tokens?: boolean }): { ids: number[] };
  decode(ids: number[], options?: { skip_special_tokens?: boolean }): string;
  token_to_id(token: string): number | undefined;
  id_to_token(id: number): string | undefined;
}
const Tokenizer = hfTokenizers.Tokenizer as unknown as new (json: object, config: object) => HfTokenizer;
const BpeModel = (hfTokenizers as unknown as { BPE: abstract new (...args: never[]) => HfBpeModel }).BPE;

// ---------------------------------------------------------------------------------------------
// Public interface (the engine and the CLI code against this, not against the class)

export interface EncodeOptions {
  /** Prepend BOS when the model wants one (`addBos`). Default false: ctx adds BOS itself where needed. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Leave out special tokens such as <|im_end|>. Default false. */
  skipSpecialTokens?: boolean;
}

export interface EncodeSegmentsOptions {
  /** Worker threads for large inputs; 0 encodes on the calling thread. Default min(4, available cores). */
  workers?: number;
  /**
   * Inputs shorter than this many characters are encoded on the calling thread. A worker costs about
   * 0.9 s of CPU to start (it parses tokenizer.json and builds the vocabulary) and starts with empty
   * memos, while this thread encodes prose at about 4 MB per CPU-second with warm ones (Qwen,
   * measured), so two workers only win above roughly 10 MB on two idle cores. Default 8,000,000.
   */
  parallelThreshold?: number;
  /** Read special-token text in the segments ("<|im_end|>") as special tokens. Default false. */
  parseSpecialTokens?: boolean;
  /** Called as pieces finish, with characters done and the total. */
  onProgress?: (doneChars: number, totalChars: number) => void;
}

export interface EncodedSegments {
  /** The token ids of every segment, concatenated in order. */
  ids: Int32Array;
  /** segmentStarts[i] is the index in `ids` of segment i's first token (equal to the next start when empty). */
  segmentStarts: Int32Array;
}

export interface TextTokenizer {
  /** The model folder this tokenizer was read from. */
  readonly dir: string;
  /** Highest token id + 1, added tokens included (may be smaller than config.json vocab_size, which is padded). */
  readonly vocabSize: number;
  readonly bosId: number | null;
  /** Every id that ends generation: tokenizer_config eos_token, config.json and generation_config.json eos ids. */
  readonly eosIds: number[];
  /** Whether the model expects BOS in front of a prompt. */
  readonly addBos: boolean;
  readonly chatTemplate: string | null;
  /** The cut rule in force for parallel encoding, or null (with the reason) when segments are encoded whole. */
  readonly cutRule: { rule: CutRule | null; reason: string };

  encode(text: string, opts?: EncodeOptions): number[];
  decode(ids: ArrayLike<number>, opts?: DecodeOptions): string;
  encodeSegments(segments: Segment[], opts?: EncodeSegmentsOptions): Promise<EncodedSegments>;
  idToToken(id: number): string | null;
  tokenToId(token: string): number | null;
  isSpecial(id: number): boolean;
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions): string;
}

// ---------------------------------------------------------------------------------------------
// Reading the files

function readJson(path: string, required: boolean): Json | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (!required && (e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fsError(e, path, 'model');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CtxError('model', `not valid JSON (${(e as Error).message})`, { path });
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new CtxError('model', 'not a JSON object', { path });
  return value as Json;
}

/** The two tokenizer files of a model folder, parsed. tokenizer_config.json may be absent (treated as {}). */
function readTokenizerFiles(dir: string): { json: Json; config: Json; jsonPath: string } {
  const jsonPath = join(dir, 'tokenizer.json');
  if (!existsSync(jsonPath)) {
    const hint = existsSync(join(dir, 'tokenizer.model'))
      ? ' (only a sentencepiece tokenizer.model is there; ctx needs the Hugging Face tokenizer.json)'
      : '';
    throw new CtxError('model', `no tokenizer.json in the model folder${hint}`, { path: dir });
  }
  const json = readJson(jsonPath, true)!;
  if (!json.model || typeof json.model !== 'object') throw new CtxError('model', 'tokenizer.json has no "model" section', { path: jsonPath });
  const config = readJson(join(dir, 'tokenizer_config.json'), false) ?? {};
  return { json, config, jsonPath };
}

// ---------------------------------------------------------------------------------------------
// Where a text may be cut without changing its tokens

/**
 * Cuts are made only at a single ASCII space with a letter on each side ("word| word").
 *  - keep-space: the piece after the cut starts with the space. Right for regex pre-tokenizers
 *    (GPT-2, Llama 3, Qwen: " word" is always one pre-token, split from what precedes it) and for
 *    Metaspace, which does not add a second "▁" to a piece that already starts with one.
 *  - drop-space: the space is left out and the tokenizer's own Prepend("▁") normalizer puts it back
 *    (legacy sentencepiece-style tokenizer.json, e.g. Llama 2 and the aidreams model).
 */
export type CutRule = 'keep-space' | 'drop-space';

const CUT_POINT = /(?<=\p{L}) (?=\p{L})/gu;

/** Normalizers that act on each character (or compose with combining marks) and so cannot see a cut. */
const LOCAL_NORMALIZERS = new Set(['NFC', 'NFD', 'NFKC', 'NFKD', 'Lowercase']);

function flatten(node: unknown, listKey: string): Json[] {
  if (!node || typeof node !== 'object') return [];
  const n = node as Json;
  if (n.type === 'Sequence' && Array.isArray(n[listKey])) return (n[listKey] as unknown[]).flatMap((c) => flatten(c, listKey));
  return [n];
}

/** Texts on which every cut point is tried at load time, as a check of the reasoning in deriveCutRule. */
const CUT_PROBES = [
  'The quick brown fox jumps over the lazy dog, and then it sleeps.',
  'naïve café déjà vu; Ünïcödé wörds and Ελληνικά κείμενα εδώ',
  "don't stop it's fine they'll see we've been I'm sure",
  'a b c d e f g h i j k l m n o p',
  'In 2024 there were 365 days x y z and ABC def GHI.',
  'first line\nsecond line here\tand tab then text',
  '日本 語の テキスト と 中文 文本',
];

/**
 * Decides whether and how long texts may be cut for this tokenizer. The reasoning is structural:
 * a BPE token can only span a cut if the pre-tokenizer keeps both sides in one "word" and a merge
 * joins them. Anything not understood here gets no cut rule; segments are then encoded whole
 * (still correct, only less parallel).
 */
function deriveCutRule(json: Json, hf: HfTokenizer): { rule: CutRule | null; giantWord: boolean; reason: string } {
  const none = (reason: string) => ({ rule: null, giantWord: false, reason });
  const model = json.model as Json;
  if (model.type !== 'BPE' && !(model.type === undefined && 'merges' in model)) return none(`model type ${String(model.type)} is not BPE`);
  if (model.unk_token && model.fuse_unk && !model.byte_fallback) return none('unknown tokens are fused across neighbours');

  for (const t of (json.added_tokens as Json[] | undefined) ?? []) {
    const content = String(t.content ?? '');
    // An added token is matched before anything else; a cut inside or right beside one could change that.
    if (/\s/.test(content) || /^\p{L}|\p{L}$/u.test(content)) return none(`added token ${JSON.stringify(content)} could touch a cut`);
  }

  const normalizers = flatten(json.normalizer, 'normalizers');
  const preTokenizers = flatten(json.pre_tokenizer, 'pretokenizers');
  let prepend = false;
  let spaceToMeta = false;
  for (const n of normalizers) {
    const type = String(n.type);
    if (LOCAL_NORMALIZERS.has(type)) continue;
    if (type === 'Prepend' && n.prepend === '▁') prepend = true;
    else if (type === 'Replace' && (n.pattern as Json | undefined)?.String === ' ' && n.content === '▁') spaceToMeta = true;
    else return none(`normalizer ${type} is not known to be safe to cut around`);
  }

  let rule: CutRule;
  let giantWord: boolean;
  const preTypes = preTokenizers.map((p) => String(p.type));
  if (preTypes.length === 0) {
    // No pre-tokenizer: BPE runs over the whole text as one word (sentencepiece style).
    if (!(prepend && spaceToMeta)) return none('no pre-tokenizer and no sentencepiece-style normalizer');
    rule = 'drop-space';
    giantWord = true;
  } else if (preTypes.length === 1 && preTypes[0] === 'Metaspace') {
    if (prepend) return none('Prepend normalizer together with Metaspace');
    // This library's Metaspace never splits, so the text is one word here too.
    rule = 'keep-space';
    giantWord = true;
  } else if (preTypes.every((t) => t === 'Split' || t === 'ByteLevel' || t === 'Digits')) {
    if (prepend || spaceToMeta) return none('space-replacing normalizer together with a regex pre-tokenizer');
    const splits = preTokenizers.some((p) => p.type === 'Split' || (p.type === 'ByteLevel' && p.use_regex !== false));
    if (!splits) return none('pre-tokenizer does not split words');
    rule = 'keep-space';
    giantWord = false;
  } else {
    return none(`pre-tokenizer ${preTypes.join('+')} is not known to be safe to cut around`);
  }

  if (giantWord) {
    // The whole text is one word, so what keeps a cut "x|▁y" clean is that no merge joins a token
    // ending in a letter with one starting with "▁".
    const bpe = hf.model as HfBpeModel;
    const meta = '▁';
    if (bpe.merges.some(([a, b]) => b.startsWith(meta) && /\p{L}$/u.test(a))) return none('a merge joins a word to the following "▁"');
  }

  for (const probe of CUT_PROBES) {
    const whole = hf.encode(probe, { add_special_tokens: false }).ids;
    const pieces = cutText(probe, rule, 1).flatMap((p) => hf.encode(p, { add_special_tokens: false }).ids);
    if (whole.length !== pieces.length || whole.some((id, i) => id !== pieces[i])) {
      return none(`cutting changed the tokens of ${JSON.stringify(probe)}`);
    }
  }
  return { rule, giantWord, reason: giantWord ? `${rule} (sentencepiece-style, one BPE word per piece)` : `${rule} (regex pre-tokenizer)` };
}

/**
 * Cuts `text` into pieces of at least `target` characters (the last may be shorter) at cut points
 * only. Encoding the pieces one by one gives the same ids as encoding `text`.
 */
export function cutText(text: string, rule: CutRule, target: number): string[] {
  const pieces: string[] = [];
  let start = 0;
  const re = new RegExp(CUT_POINT); // own lastIndex: callers may run concurrently in one thread via async code
  while (text.length - start > target) {
    re.lastIndex = start + target;
    const m = re.exec(text);
    if (!m) break;
    pieces.push(text.slice(start, m.index));
    start = rule === 'drop-space' ? m.index + 1 : m.index;
  }
  pieces.push(text.slice(start));
  return pieces;
}

// ---------------------------------------------------------------------------------------------
// The encoding core, shared by the main thread and the workers

/**
 * The library's BPE memo is an LRU of 10,000 words whose every hit deletes and re-inserts a Map entry.
 * On book-length text that memo thrashes; a plain Map that is simply cleared when full made encoding
 * about 1.8x faster on Moby Dick. The memo is of a pure function, so results cannot change.
 */
class WordMemo {
  private readonly map = new Map<string, string[]>();
  constructor(private readonly capacity: number) {}
  get(key: string): string[] | undefined {
    return this.map.get(key);
  }
  put(key: string, value: string[]): void {
    if (this.map.size >= this.capacity) this.map.clear();
    this.map.set(key, value);
  }
  clear(): void {
    this.map.clear();
  }
}

/** Piece size on the word fast path: only bounds what one added token can send to the slow path. */
const FAST_PIECE = 1 << 16;
/** Longer pieces (runs without a cut point) are encoded but not memoised. */
const MEMO_PIECE_CHARS = 64;
/** Characters per worker task. */
const TASK_CHARS = 1 << 17;

/**
 * The word-level fast path for byte-level BPE tokenizers whose pre-tokenizer is a Sequence ending in
 * ByteLevel(use_regex=false), i.e. Qwen2/2.5/3 and Llama 3: the steps before ByteLevel split the
 * text into words, and each word's ids depend on that word alone. Prose repeats its words, so ids
 * are memoised per raw word, which skips the byte mapping, BPE and id lookups for every repeat
 * (about 2x faster on a book read once). Any text holding added-token text takes the library's path.
 */
interface FastPath {
  /** Normalized text -> raw words (every pre-tokenizer step but the final ByteLevel). */
  split: (normalized: string) => string[];
  /** One raw word -> its ids (ByteLevel mapping, BPE, vocabulary). */
  wordIds: (word: string) => number[];
  /** Matches any added token's text; such texts are left to the library. */
  addedRe: RegExp | null;
}

function deriveFastPath(json: Json, config: Json, hf: HfTokenizer): FastPath | null {
  const model = json.model as Json;
  const pre = json.pre_tokenizer as Json | null;
  const steps = pre?.type === 'Sequence' && Array.isArray(pre.pretokenizers) ? (pre.pretokenizers as Json[]) : null;
  const last = steps?.at(-1);
  const libSteps = hf.pre_tokenizer?.tokenizers;
  if (!steps || !last || last.type !== 'ByteLevel' || last.use_regex !== false || last.add_prefix_space === true) return null;
  if (!libSteps || libSteps.length !== steps.length || libSteps.some((t) => !t)) return null;
  if (model.type !== 'BPE' || (model.fuse_unk && model.unk_token)) return null; // unknowns would fuse across words
  if (config.remove_space === true || config.do_lowercase_and_remove_accent === true) return null;
  const added = (json.added_tokens as Json[] | undefined) ?? [];
  if (added.some((t) => t.normalized === true)) return null; // matched after normalization: keep the library's order

  const before = libSteps.slice(0, -1) as HfPreTokenizer[];
  const byteLevel = libSteps.at(-1) as HfPreTokenizer;
  const vocab = hf.model.tokens_to_ids;
  const unk = hf.model.unk_token_id;
  const contents = added.map((t) => String(t.content)).filter((c) => c.length > 0);
  return {
    split: (normalized) => before.reduce((words, step) => step.pre_tokenize(words, { section_index: 0 }), [normalized]),
    wordIds: (word) => hf.model(byteLevel.pre_tokenize([word])).map((t) => vocab.get(t) ?? unk ?? 0),
    addedRe: contents.length ? new RegExp(contents.map(escapeRegExp).join('|')) : null,
  };
}

export class EncoderCore {
  readonly hf: HfTokenizer;
  readonly cut: { rule: CutRule | null; giantWord: boolean; reason: string };
  private readonly specialRe: RegExp | null;
  readonly specialIds: Set<number>;
  private fast: FastPath | null;
  private readonly wordIds = new Map<string, number[]>();
  private readonly pieceIds = new Map<string, number[]>();

  constructor(json: Json, config: Json, jsonPath: string) {
    try {
      this.hf = new Tokenizer(json, config);
    } catch (e) {
      throw new CtxError('model', `tokenizer.json is not supported: ${(e as Error).message}`, { path: jsonPath, cause: e });
    }
    if (this.hf.model instanceof BpeModel) this.hf.model.cache = new WordMemo(1 << 18);

    const specials = ((json.added_tokens as Json[] | undefined) ?? []).filter((t) => t.special === true);
    this.specialIds = new Set(specials.map((t) => Number(t.id)));
    // Longest first, so "<|im_end|>" wins over any special that is its prefix.
    const contents = specials.map((t) => String(t.content)).filter((c) => c.length > 0).sort((a, b) => b.length - a.length);
    this.specialRe = contents.length ? new RegExp(contents.map(escapeRegExp).join('|'), 'g') : null;
    this.cut = deriveCutRule(json, this.hf);
    this.fast = deriveFastPath(json, config, this.hf);
    // Belt and braces: the fast path must agree with the library on the probe texts, or it is off.
    if (this.fast && CUT_PROBES.some((p) => !sameList(this.encodeFast(p), this.hf.encode(p, { add_special_tokens: false }).ids))) {
      this.fast = null;
    }
  }

  /** Special-token text read as special tokens, no BOS/EOS added: the library's encode, or the same ids faster. */
  private encodeLibrary(text: string): number[] {
    if (text.length === 0) return [];
    if (this.fast && !(this.fast.addedRe && this.fast.addedRe.test(text))) return this.encodeFast(text);
    return this.hf.encode(text, { add_special_tokens: false }).ids;
  }

  private encodeFast(text: string): number[] {
    const fast = this.fast!;
    const normalized = this.hf.normalizer ? this.hf.normalizer(text) : text;
    const out: number[] = [];
    for (const word of fast.split(normalized)) {
      let ids = this.wordIds.get(word);
      if (ids === undefined) {
        ids = fast.wordIds(word);
        if (this.wordIds.size >= 1 << 18) this.wordIds.clear();
        this.wordIds.set(word, ids);
      }
      for (let k = 0; k < ids.length; k++) out.push(ids[k]);
    }
    return out;
  }

  /**
   * Same ids as encodeLibrary(text), faster:
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
        if (piece.length <= MEMO_PIECE_CHARS) {
          if (this.pieceIds.size >= 1 << 18) this.pieceIds.clear();
          this.pieceIds.set(piece, ids);
        }
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
      out.push(...this.encodeText(text.slice(last, m.index)));
      out.push(...this.encodePlain(m[0]));
      last = m.index! + m[0].length;
    }
    out.push(...this.encodeText(text.slice(last)));
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

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Used by the worker: the encoding core of a model folder. */
export function loadEncoderCore(dir: string): EncoderCore {
  const { json, config, jsonPath } = readTokenizerFiles(dir);
  return new EncoderCore(json, config, jsonPath);
}

// ---------------------------------------------------------------------------------------------
// The tokenizer

export interface LoadTokenizerOptions {
  /** EOS ids from config.json when the caller has already read it; otherwise config.json is read here. */
  eosIds?: number[];
}

export async function loadTokenizer(modelDir: string, opts: LoadTokenizerOptions = {}): Promise<TextTokenizer> {
  return HfTextTokenizer.load(modelDir, opts);
}

function idList(value: unknown): number[] {
  if (typeof value === 'number' && Number.isInteger(value)) return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number' && Number.isInteger(v));
  return [];
}

export class HfTextTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosIds: number[];
  readonly addBos: boolean;
  readonly chatTemplate: string | null;
  readonly cutRule: { rule: CutRule | null; reason: string };
  private readonly template: ChatTemplate | null;

  private constructor(
    readonly dir: string,
    private readonly core: EncoderCore,
    config: Json,
    modelConfig: Json | null,
    generationConfig: Json | null,
    opts: LoadTokenizerOptions,
  ) {
    const hf = core.hf;
    this.vocabSize = hf.model.vocab.length;
    this.cutRule = { rule: core.cut.rule, reason: core.cut.reason };

    // bos: tokenizer_config says it (null included); config.json only when tokenizer_config is silent.
    const bosToken = specialTokenString(config.bos_token);
    if (bosToken !== null) this.bosId = hf.token_to_id(bosToken) ?? null;
    else if (!('bos_token' in config) && typeof modelConfig?.bos_token_id === 'number') this.bosId = modelConfig.bos_token_id;
    else this.bosId = null;

    const eos = new Set<number>([...(opts.eosIds ?? idList(modelConfig?.eos_token_id)), ...idList(generationConfig?.eos_token_id)]);
    const eosToken = specialTokenString(config.eos_token);
    const eosFromTokenizer = eosToken !== null ? hf.token_to_id(eosToken) : undefined;
    if (eosFromTokenizer !== undefined) eos.add(eosFromTokenizer);
    this.eosIds = [...eos];

    // add_bos_token when the config states it; otherwise ask the post-processor what it adds.
    if (this.bosId === null) this.addBos = false;
    else if (typeof config.add_bos_token === 'boolean') this.addBos = config.add_bos_token;
    else this.addBos = hf.encode('a', { add_special_tokens: true }).ids[0] === this.bosId;

    const found = findChatTemplate(dir, config);
    this.chatTemplate = found?.template ?? null;
    this.template = found
      ? new ChatTemplate(
          found.template,
          {
            bos_token: bosToken,
            eos_token: eosToken,
            unk_token: specialTokenString(config.unk_token),
            pad_token: specialTokenString(config.pad_token),
          },
          found.path,
        )
      : null;
  }

  static load(modelDir: string, opts: LoadTokenizerOptions = {}): HfTextTokenizer {
    const dir = resolve(modelDir);
    const { json, config, jsonPath } = readTokenizerFiles(dir);
    const core = new EncoderCore(json, config, jsonPath);
    const modelConfig = readJson(join(dir, 'config.json'), false);
    const generationConfig = readJson(join(dir, 'generation_config.json'), false);
    return new HfTextTokenizer(dir, core, config, modelConfig, generationConfig, opts);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids = this.core.encodeText(text);
    return opts.addSpecialTokens && this.addBos && this.bosId !== null ? [this.bosId, ...ids] : ids;
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    // Ids the tokenizer does not know (padding rows of a larger embedding, random test models)
    // decode to nothing rather than crash a stream.
    const known: number[] = [];
    for (let i = 0; i < ids.length; i++) if (ids[i] >= 0 && ids[i] < this.vocabSize) known.push(ids[i]);
    if (known.length === 0) return '';
    return this.core.hf.decode(known, { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  idToToken(id: number): string | null {
    return this.core.hf.id_to_token(id) ?? null;
  }

  tokenToId(token: string): number | null {
    return this.core.hf.token_to_id(token) ?? null;
  }

  isSpecial(id: number): boolean {
    return this.core.specialIds.has(id);
  }

  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions): string {
    if (!this.template) {
      throw new CtxError('model', 'the model has no chat template (a base model?); use a chat/instruct model', { path: this.dir });
    }
    return this.template.render(messages, opts);
  }

  async encodeSegments(segments: Segment[], opts: EncodeSegmentsOptions = {}): Promise<EncodedSegments> {
    const totalChars = segments.reduce((n, s) => n + s.text.length, 0);
    const workers = opts.workers ?? Math.min(4, availableParallelism());
    const parse = opts.parseSpecialTokens ?? false;
    const tasks = splitIntoTasks(segments, this.core.cut.rule);
    const results =
      workers <= 0 || totalChars < (opts.parallelThreshold ?? 8_000_000)
        ? await this.encodeTasksHere(tasks, parse, totalChars, opts.onProgress)
        : await encodeInWorkers(this.dir, tasks, workers, parse, totalChars, opts.onProgress);
    return assemble(segments.length, tasks, results);
  }

  /** Encodes on this thread, yielding to the event loop between pieces so progress can be drawn. */
  private async encodeTasksHere(
    tasks: Task[],
    parse: boolean,
    totalChars: number,
    onProgress?: (done: number, total: number) => void,
  ): Promise<Int32Array[]> {
    const results: Int32Array[] = [];
    let done = 0;
    for (const t of tasks) {
      results.push(Int32Array.from(parse ? this.core.encodeText(t.text) : this.core.encodeDocumentText(t.text)));
      done += t.text.length;
      onProgress?.(done, totalChars);
      await new Promise((r) => setImmediate(r));
    }
    return results;
  }
}

/** A piece of one segment; a segment's pieces, encoded one by one, give the segment's ids. */
interface Task {
  segment: number;
  text: string;
}

/** Cuts segments into pieces of about TASK_CHARS where the cut rule allows; otherwise a segment is one piece. */
function splitIntoTasks(segments: Segment[], rule: CutRule | null): Task[] {
  const tasks: Task[] = [];
  segments.forEach((s, segment) => {
    const pieces = rule === null ? [s.text] : cutText(s.text, rule, TASK_CHARS);
    for (const text of pieces) tasks.push({ segment, text });
  });
  return tasks;
}

/** Concatenates the pieces' ids in order and records where each segment starts. */
function assemble(segmentCount: number, tasks: Task[], results: Int32Array[]): EncodedSegments {
  let total = 0;
  for (const r of results) total += r.length;
  const ids = new Int32Array(total);
  const segmentStarts = new Int32Array(segmentCount);
  let at = 0;
  let t = 0;
  for (let s = 0; s < segmentCount; s++) {
    segmentStarts[s] = at;
    while (t < tasks.length && tasks[t].segment === s) {
      ids.set(results[t], at);
      at += results[t].length;
      t++;
    }
  }
  return { ids, segmentStarts };
}

// ---------------------------------------------------------------------------------------------
// Parallel encoding

/** Messages between this file and tokenize-worker.ts. */
export interface WorkerInit {
  dir: string;
  parseSpecialTokens: boolean;
}
export type ToWorker = { id: number; text: string };
export type FromWorker = { ready: true } | { id: number; ids: Int32Array } | { id: number; error: string } | { error: string };

/**
 * Starts one worker on tokenize-worker next to this file: the .js file when ctx is built. When running
 * from TypeScript source (the tests, under tsx), a worker's entry module does not get the tsx loader
 * that `--import tsx` gave this thread, so a one-line bootstrap registers tsx first.
 */
function startWorker(init: WorkerInit): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./tokenize-worker.js', here), { workerData: init });
  const entry = new URL('./tokenize-worker.ts', here).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: init });
}

async function encodeInWorkers(
  dir: string,
  tasks: Task[],
  workerCount: number,
  parseSpecialTokens: boolean,
  totalChars: number,
  onProgress?: (done: number, total: number) => void,
): Promise<Int32Array[]> {
  const results: Int32Array[] = new Array(tasks.length);
  if (tasks.length === 0) return results;
  const count = Math.max(1, Math.min(workerCount, tasks.length));
  const init: WorkerInit = { dir, parseSpecialTokens };
  const pool: Worker[] = [];

  try {
    await new Promise<void>((resolvePromise, reject) => {
      let next = 0;
      let finished = 0;
      let doneChars = 0;
      let failed = false;
      const fail = (message: string) => {
        if (failed) return;
        failed = true;
        reject(new Error(`tokenizer worker: ${message}`));
      };
      // Whichever worker is free takes the next piece, so a slow piece does not hold up the rest.
      const feed = (w: Worker) => {
        if (next < tasks.length) {
          const id = next++;
          w.postMessage({ id, text: tasks[id].text } satisfies ToWorker);
        }
      };
      for (let k = 0; k < count; k++) {
        const w = startWorker(init);
        pool.push(w);
        w.on('message', (msg: FromWorker) => {
          if ('error' in msg) return fail(msg.error);
          if ('ready' in msg) return feed(w);
          results[msg.id] = msg.ids;
          finished++;
          doneChars += tasks[msg.id].text.length;
          onProgress?.(doneChars, totalChars);
          if (finished === tasks.length) resolvePromise();
          else feed(w);
        });
        w.on('error', (e) => fail(e.message));
        w.on('exit', (code) => {
          if (finished < tasks.length) fail(`exited with code ${code} before finishing`);
        });
      }
    });
  } finally {
    // A worker loads the same files this thread already loaded, so a failure there is a bug in ctx and
    // surfaces as a plain Error (exit code "internal"); either way no worker is left running.
    await Promise.all(pool.map((w) => w.terminate()));
  }
  return results;
}

// ---------------------------------------------------------------------------------------------
// Streaming decode

/**
 * Turns generated ids into text as they arrive. Decoding one id at a time is wrong in two ways: a
 * character may be split over several byte tokens (byte-level BPE, or sentencepiece <0xNN> pieces),
 * and some decoders strip the leading space of the first token of whatever they are given. So the
 * last ids are decoded together with the ids of the previous emitted piece as context, and the
 * difference is emitted only when it does not end in U+FFFD (an incomplete UTF-8 sequence).
 */
export class StreamingDetokenizer {
  private readonly ids: number[] = [];
  /** Start of the context window (ids already emitted, decoded again for context). */
  private prefixOffset = 0;
  /** End of what has been emitted. */
  private readOffset = 0;
  private prefixText = '';

  constructor(
    private readonly tokenizer: Pick<TextTokenizer, 'decode'>,
    private readonly opts: DecodeOptions = { skipSpecialTokens: true },
  ) {}

  /** Adds one id; returns the text it completes (often '', never half a character). */
  push(id: number): string {
    this.ids.push(id);
    const text = this.tokenizer.decode(this.ids.slice(this.prefixOffset), this.opts);
    if (text.length <= this.prefixText.length || text.endsWith('\uFFFD')) return '';
    const delta = text.slice(this.prefixText.length);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    this.prefixText = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), this.opts);
    return delta;
  }

  /**
   * Ends the stream: returns whatever is still held back (an incomplete character at the very end
   * comes out as U+FFFD). A later push starts afresh, as if at the start of a text.
   */
  flush(): string {
    if (this.readOffset === this.ids.length) return '';
    const text = this.tokenizer.decode(this.ids.slice(this.prefixOffset), this.opts);
    const delta = text.length > this.prefixText.length ? text.slice(this.prefixText.length) : '';
    this.prefixOffset = this.readOffset = this.ids.length;
    this.prefixText = '';
    return delta;
  }
}
