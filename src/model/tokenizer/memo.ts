// The tokenizer's memos (a word or a short piece of text → its tokens or ids), one per kind per
// thread: the BPE word memo (fast-path.ts WordMemo), the fast path's word ids (WordFastPath) and the
// short-piece ids (encoder.ts). A memo is bounded by the bytes it holds, not by its number of
// entries, and is simply cleared when full: a book's vocabulary fits many times over, and text that
// is all new words (a 1 GB log, a document whose citation markers number every 25th line) only makes
// it clear more often.
//
// Keys are stored as copies. V8 keeps a substring of 13 characters or more as a view into the string
// it was cut from, so a key cut from a 128K-character piece of the document kept that whole piece
// alive for as long as the key was remembered: with citation markers ("[line 40]", "[line 41]"…,
// each a new word to a tokenizer that keeps digit runs together) every piece of the document stayed
// in memory until the memo filled (inspect -m tiny with markers: 698 MB peak at 200 MB of text,
// 1.8 GB at 1 GB).

/** Bytes one memo may hold (estimated, see TextMemo.put) before it is cleared. */
export const MEMO_BYTES = 16 << 20;

/** A Map entry, a key string's header and a value array's header, roughly, in V8. */
const ENTRY_BYTES = 96;

export class TextMemo<V> {
  private readonly map = new Map<string, V>();
  private held = 0;

  constructor(
    /** Bytes of a value beyond ENTRY_BYTES: its elements, and the strings it holds. */
    private readonly valueBytes: (value: V) => number,
    private readonly capacityBytes = MEMO_BYTES,
  ) {}

  get(key: string): V | undefined {
    return this.map.get(key);
  }

  put(key: string, value: V): void {
    // Two bytes a character: what a key holding any character beyond Latin-1 takes.
    const bytes = ENTRY_BYTES + 2 * key.length + this.valueBytes(value);
    if (this.held + bytes > this.capacityBytes) this.clear();
    this.map.set(ownCopy(key), value);
    this.held += bytes;
  }

  clear(): void {
    this.map.clear();
    this.held = 0;
  }

  get size(): number {
    return this.map.size;
  }

  /** The estimated bytes held. */
  get bytes(): number {
    return this.held;
  }
}

/** An array of ids (small integers, stored inline). */
export function idsBytes(ids: readonly number[]): number {
  return 8 * ids.length;
}

/** An array of token strings, each its own string. */
export function tokensBytes(tokens: readonly string[]): number {
  let n = 0;
  for (const t of tokens) n += 8 + 16 + 2 * t.length;
  return n;
}

/**
 * A copy of `s` that shares no memory with the text it was cut from (see above). The JSON round trip
 * is exact for every string, lone surrogates included, and runs only when a memo learns a new entry,
 * next to the BPE work that found its value.
 */
export function ownCopy(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}
