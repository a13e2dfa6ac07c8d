// Text <-> token ids for a model folder (tokenizer.json + tokenizer_config.json), on top of
// @huggingface/tokenizers; a GGUF file's tokenizer is gguf/tokenizer.ts, built on the same parts.
// This file is the tokenizer the engine sees; the parts live in tokenizer/:
//
//   files.ts        reading the tokenizer files
//   library.ts      the typed view of @huggingface/tokenizers
//   cut-rule.ts     where a long text may be cut without changing its ids
//   fast-path.ts    memos for book-length text (reaching into the library, measured)
//   encoder.ts      text -> ids (document text never becomes special tokens)
//   pieces.ts       pieces of work, and ids per segment joined
//   pool.ts         encoding pieces in worker threads (worker.ts)
//   stream.ts       segments -> ids per segment as they stream past (this thread, then workers)
//   detokenizer.ts  streaming decode that never emits half a character
//   text-tokenizer.ts  what every tokenizer shares: deadlines, decode, encoding as a stream
//
// The chat template is chat-template.ts. Tokenizer regexes and templates come with the model folder,
// which ctx does not trust: every call that runs them here has a deadline and stops on Ctrl-C
// (bounded-run.ts), and the worker pool stops on its deadline or the abort signal.

import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CtxError } from '../errors.js';
import type { Segment } from '../input/document.js';
import { runBounded } from './bounded-run.js';
import { GgufFile } from './gguf/file.js';
import { GgufTextTokenizer } from './gguf/tokenizer.js';
import { ChatTemplate, findChatTemplate, specialTokenString, type ChatMessage, type ChatTemplateOptions } from './chat-template.js';
import type { CutRule } from './tokenizer/cut-rule.js';
import { EncoderCore } from './tokenizer/encoder.js';
import { readJson, readTokenizerFiles } from './tokenizer/files.js';
import type { Json } from './tokenizer/library.js';
import type { EncodedSegments } from './tokenizer/pieces.js';
import type { SegmentIds } from './tokenizer/stream.js';
import { BoundedTextTokenizer, DEFAULT_TOKENIZER_LIMITS, seconds } from './tokenizer/text-tokenizer.js';

export { StreamingDetokenizer } from './tokenizer/detokenizer.js';
export type { CutRule } from './tokenizer/cut-rule.js';
export type { EncodedSegments } from './tokenizer/pieces.js';
export type { SegmentIds } from './tokenizer/stream.js';

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
  /** Stops encoding (between pieces on this thread, at once in workers); rejects with the signal's reason. */
  signal?: AbortSignal;
}

export interface EncodeStreamOptions {
  /** Worker threads once the stream is long; 0 encodes on the calling thread. Default min(4, available cores). */
  workers?: number;
  /** Characters encoded on the calling thread before workers start (see parallelThreshold above). Default 8,000,000. */
  parallelThreshold?: number;
  /** Called as pieces finish, with their characters. */
  onPiece?: (chars: number) => void;
  signal?: AbortSignal;
}

/**
 * How long the model folder's code may run. Defaults are far above what real tokenizers and templates
 * need (Qwen encodes about 4,000 characters per millisecond; templates render in milliseconds).
 */
export interface TokenizerLimits {
  /** Loading tokenizer.json, including ctx's checks of the cut rule and fast path. Default 60 s. */
  loadMs?: number;
  /** One encode or decode call: this much plus 1 ms per 40 characters. Default 10 s. */
  encodeMs?: number;
  /** Rendering the chat template once. Default 5 s. */
  templateMs?: number;
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
  /**
   * Each segment's ids, in order, as the segments arrive (document text: special-token text is
   * plain text). Holds only the pieces in flight, so a document of any length can stream through.
   */
  encodeSegmentStream(segments: AsyncIterable<Segment> | Iterable<Segment>, opts?: EncodeStreamOptions): AsyncGenerator<SegmentIds>;
  idToToken(id: number): string | null;
  tokenToId(token: string): number | null;
  isSpecial(id: number): boolean;
  applyChatTemplate(messages: ChatMessage[], opts: ChatTemplateOptions): string;
}

export interface LoadTokenizerOptions {
  /** EOS ids from config.json when the caller has already read it; otherwise config.json is read here. */
  eosIds?: number[];
  limits?: TokenizerLimits;
  /** `modelDir` is this GGUF file, already opened (its header is then not parsed twice). */
  ggufFile?: GgufFile;
}

/** The tokenizer of a model folder (tokenizer.json) or of a GGUF file (its tokenizer.ggml.* metadata). */
export async function loadTokenizer(modelDir: string, opts: LoadTokenizerOptions = {}): Promise<TextTokenizer> {
  if (opts.ggufFile) return new GgufTextTokenizer(opts.ggufFile);
  if (isFile(modelDir)) return new GgufTextTokenizer(await GgufFile.open(modelDir));
  return HfTextTokenizer.load(modelDir, opts);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function idList(value: unknown): number[] {
  if (typeof value === 'number' && Number.isInteger(value)) return [value];
  if (Array.isArray(value)) return value.filter((v): v is number => typeof v === 'number' && Number.isInteger(v));
  return [];
}

export class HfTextTokenizer extends BoundedTextTokenizer {
  readonly bosId: number | null;
  readonly eosIds: number[];
  readonly addBos: boolean;
  readonly chatTemplate: string | null;
  protected readonly template: ChatTemplate | null;

  private constructor(
    dir: string,
    jsonPath: string,
    core: EncoderCore,
    config: Json,
    modelConfig: Json | null,
    generationConfig: Json | null,
    opts: LoadTokenizerOptions,
    limits: Required<TokenizerLimits>,
  ) {
    super(dir, jsonPath, core, limits);
    const hf = core.hf;

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
    else this.addBos = this.bounded(() => hf.encode('a', { add_special_tokens: true }).ids[0], 1) === this.bosId;

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
          { timeMs: limits.templateMs },
        )
      : null;
  }

  static load(modelDir: string, opts: LoadTokenizerOptions = {}): HfTextTokenizer {
    const dir = resolve(modelDir);
    const limits: Required<TokenizerLimits> = { ...DEFAULT_TOKENIZER_LIMITS, ...opts.limits };
    const { json, config, jsonPath } = readTokenizerFiles(dir);
    const core = runBounded(
      () => new EncoderCore(json, config, jsonPath),
      limits.loadMs,
      () => new CtxError('model', `the tokenizer took more than ${seconds(limits.loadMs)} to load (a pathological regular expression?)`, { path: jsonPath }),
    );
    const modelConfig = readJson(join(dir, 'config.json'), false);
    const generationConfig = readJson(join(dir, 'generation_config.json'), false);
    return new HfTextTokenizer(dir, jsonPath, core, config, modelConfig, generationConfig, opts, limits);
  }

  protected noTemplateMessage(): string {
    return 'the model has no chat template (a base model?); use a chat/instruct model';
  }

  protected encodeDocumentText(text: string): number[] {
    return this.core.encodeDocumentText(text);
  }

  /** Workers read the model folder's tokenizer.json themselves. */
  protected workerTokenizer(): null {
    return null;
  }
}
