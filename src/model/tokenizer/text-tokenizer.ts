// What every tokenizer ctx runs has in common, whatever file it was described by (a model folder's
// tokenizer.json, a GGUF file's metadata): each call into the tokenizer library has a deadline
// (bounded-run.ts), unknown ids decode to nothing, and segments are encoded as a stream — on this
// thread, then in worker threads once the input is long. A subclass says where its encoders come
// from and how a worker rebuilds them.

import { availableParallelism } from 'node:os';
import type { Segment } from '../../input/document.js';
import { CtxError } from '../../errors.js';
import { runBounded, runSlice } from '../bounded-run.js';
import type { ChatMessage, ChatTemplate, ChatTemplateOptions } from '../chat-template.js';
import type { DecodeOptions, EncodeOptions, EncodeSegmentsOptions, EncodeStreamOptions, TextTokenizer, TokenizerLimits } from '../tokenizer.js';
import type { CutRule } from './cut-rule.js';
import type { EncoderCore } from './encoder.js';
import type { Json } from './library.js';
import { joinSegments, type EncodedSegments } from './pieces.js';
import { EncoderPool } from './pool.js';
import { encodeSegmentStream, type SegmentIds } from './stream.js';

export const DEFAULT_TOKENIZER_LIMITS: Required<TokenizerLimits> = { loadMs: 60_000, encodeMs: 10_000, templateMs: 5_000 };

/** Inputs of this many characters and more go to worker threads (see EncodeSegmentsOptions.parallelThreshold). */
const PARALLEL_THRESHOLD = 8_000_000;

export abstract class BoundedTextTokenizer implements TextTokenizer {
  abstract readonly bosId: number | null;
  abstract readonly eosIds: number[];
  abstract readonly addBos: boolean;
  abstract readonly chatTemplate: string | null;
  readonly vocabSize: number;
  readonly cutRule: { rule: CutRule | null; reason: string };

  /**
   * @param dir    the model folder or GGUF file
   * @param source the file deadline errors name (tokenizer.json, or the GGUF file)
   * @param core   prompt text: special-token text is read as those tokens
   */
  protected constructor(
    readonly dir: string,
    protected readonly source: string,
    protected readonly core: EncoderCore,
    protected readonly limits: Required<TokenizerLimits>,
  ) {
    this.vocabSize = core.hf.model.vocab.length;
    this.cutRule = { rule: core.cut.rule, reason: core.cut.reason };
  }

  protected abstract readonly template: ChatTemplate | null;
  /** The error when a chat is asked of a tokenizer without a template. */
  protected abstract noTemplateMessage(): string;
  /** Document text → ids: special-token text stays text. */
  protected abstract encodeDocumentText(text: string): number[];
  /** What a worker thread needs to build the same encoder: null reads `dir` as a model folder. */
  protected abstract workerTokenizer(parseSpecialTokens: boolean): { json: Json; config: Json } | null;

  /** Milliseconds one call over `chars` characters may take. */
  protected callMs(chars: number): number {
    return this.limits.encodeMs + chars / 40;
  }

  /** Runs the tokenizer's code on `chars` characters with a deadline (see bounded-run.ts). */
  protected bounded<T>(fn: () => T, chars: number): T {
    const ms = this.callMs(chars);
    return runBounded(fn, ms, () => this.tooLong(ms, chars));
  }

  private tooLong(ms: number, chars: number): CtxError {
    return new CtxError('model', `the tokenizer took more than ${seconds(ms)} on ${chars} characters (a pathological regular expression?)`, { path: this.source });
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids = this.bounded(() => this.core.encodeText(text), text.length);
    return opts.addSpecialTokens && this.addBos && this.bosId !== null ? [this.bosId, ...ids] : ids;
  }

  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    // Ids the tokenizer does not know (padding rows of a larger embedding, random test models)
    // decode to nothing rather than crash a stream.
    const known: number[] = [];
    for (let i = 0; i < ids.length; i++) if (ids[i] >= 0 && ids[i] < this.vocabSize) known.push(ids[i]);
    if (known.length === 0) return '';
    return this.bounded(() => this.core.hf.decode(known, { skip_special_tokens: opts.skipSpecialTokens ?? false }), known.length);
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
    if (!this.template) throw new CtxError('model', this.noTemplateMessage(), { path: this.dir });
    return this.template.render(messages, opts);
  }

  async encodeSegments(segments: Segment[], opts: EncodeSegmentsOptions = {}): Promise<EncodedSegments> {
    const totalChars = segments.reduce((n, s) => n + s.text.length, 0);
    // The whole input is known: workers from the start when it is long, else none.
    const parallel = totalChars >= (opts.parallelThreshold ?? PARALLEL_THRESHOLD);
    let done = 0;
    const results: Int32Array[] = [];
    const stream = this.stream(segments, opts.parseSpecialTokens ?? false, {
      workers: parallel ? opts.workers : 0,
      parallelThreshold: 0,
      signal: opts.signal,
      onPiece: opts.onProgress && ((chars) => opts.onProgress!((done += chars), totalChars)),
    });
    for await (const { ids } of stream) results.push(ids);
    return joinSegments(results);
  }

  encodeSegmentStream(segments: AsyncIterable<Segment> | Iterable<Segment>, opts: EncodeStreamOptions = {}): AsyncGenerator<SegmentIds> {
    return this.stream(segments, false, opts);
  }

  private stream(segments: AsyncIterable<Segment> | Iterable<Segment>, parse: boolean, opts: EncodeStreamOptions): AsyncGenerator<SegmentIds> {
    const encoder = {
      rule: this.core.cut.rule,
      // On this thread: one piece at a time, each within its deadline; with `slice`, given up once
      // it is slow, for worker threads to take over (where either signal stops it at once).
      here: (text: string, slice: boolean) => {
        const encode = () => (parse ? this.core.encodeText(text) : this.encodeDocumentText(text));
        if (!slice) return Int32Array.from(this.bounded(encode, text.length));
        const ms = this.callMs(text.length);
        const ids = runSlice(encode, ms, () => this.tooLong(ms, text.length));
        return ids === null ? null : Int32Array.from(ids);
      },
      startPool: (workers: number) =>
        new EncoderPool({
          dir: this.dir,
          tokenizer: this.workerTokenizer(parse) ?? undefined,
          workers,
          parseSpecialTokens: parse,
          loadMs: this.limits.loadMs,
          pieceMs: (chars) => this.callMs(chars),
          tokenizerPath: this.source,
          signal: opts.signal,
        }),
    };
    return encodeSegmentStream(segments, encoder, {
      workers: opts.workers ?? Math.min(4, availableParallelism()),
      parallelThreshold: opts.parallelThreshold ?? PARALLEL_THRESHOLD,
      onPiece: opts.onPiece,
      signal: opts.signal,
    });
  }
}

export function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${Math.round(ms / 100) / 10} s`;
}
