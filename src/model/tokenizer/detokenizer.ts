// Streaming decode: generated ids -> text as they arrive, never half a character.

import type { DecodeOptions } from '../tokenizer.js';

/**
 * Decoding one id at a time is wrong in two ways: a character may be split over several byte tokens
 * (byte-level BPE, or sentencepiece <0xNN> pieces), and some decoders strip the leading space of the
 * first token of whatever they are given. So the last ids are decoded together with the ids of the
 * previous emitted piece as context, and the difference is emitted only when it does not end in
 * U+FFFD (an incomplete UTF-8 sequence).
 */
export class StreamingDetokenizer {
  private readonly ids: number[] = [];
  /** Start of the context window (ids already emitted, decoded again for context). */
  private prefixOffset = 0;
  /** End of what has been emitted. */
  private readOffset = 0;
  private prefixText = '';

  constructor(
    private readonly tokenizer: { decode(ids: ArrayLike<number>, opts?: DecodeOptions): string },
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
