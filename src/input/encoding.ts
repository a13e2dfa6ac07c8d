// Byte-level facts about a text input: its encoding (from the byte-order mark), whether it looks
// binary, and where its UTF-8 stops being valid.
//
// ctx's decision for bytes that are not valid UTF-8: it does not guess a legacy encoding (Latin-1,
// Windows-1252) and does not replace bytes with U+FFFD, because a model reading silently mangled
// text gives confident wrong answers. The file is refused with the byte offset of the first bad
// sequence, so the user can convert it (iconv -f latin1 -t utf-8).

export type TextEncoding = 'utf-8' | 'utf-8 (BOM)' | 'utf-16le' | 'utf-16be';

/** How many bytes ctx looks at to decide that a file is binary. */
export const SNIFF_BYTES = 8192;

/** The encoding named by a byte-order mark, and the mark's length; plain UTF-8 when there is none. */
export function detectBom(head: Uint8Array): { encoding: TextEncoding; bomLength: number } {
  if (head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf) return { encoding: 'utf-8 (BOM)', bomLength: 3 };
  if (head[0] === 0xff && head[1] === 0xfe) return { encoding: 'utf-16le', bomLength: 2 };
  if (head[0] === 0xfe && head[1] === 0xff) return { encoding: 'utf-16be', bomLength: 2 };
  return { encoding: 'utf-8', bomLength: 0 };
}

/**
 * Why a sample of text looks binary, or null when it looks like text. A NUL anywhere is decisive
 * (no text format uses it); otherwise more than 10% control characters is. Tab, newline, carriage
 * return, vertical tab, form feed and ESC (ANSI colours in logs) count as text.
 * Works on bytes (UTF-8 input) and on UTF-16 code units alike.
 */
export function binaryReason(sample: ArrayLike<number>): string | null {
  let control = 0;
  for (let i = 0; i < sample.length; i++) {
    const c = sample[i]!;
    if (c === 0) return 'binary (contains NUL bytes)';
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0b && c !== 0x0c && c !== 0x0d && c !== 0x1b) || c === 0x7f) {
      control++;
    }
  }
  return sample.length > 0 && control / sample.length > 0.1 ? 'binary (mostly control characters)' : null;
}

/**
 * True when the bytes start with "%PDF-". (Readers tolerate junk before it, but a text file that
 * merely mentions "%PDF-" near its top must stay text, so ctx asks for it at the very start.)
 */
export function looksLikePdf(head: Uint8Array): boolean {
  return head[0] === 0x25 && head[1] === 0x50 && head[2] === 0x44 && head[3] === 0x46 && head[4] === 0x2d;
}

/** Length of a UTF-8 sequence from its first byte; 0 for bytes that cannot start one. */
function sequenceLength(lead: number): number {
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return 2;
  if (lead >= 0xe0 && lead <= 0xef) return 3;
  if (lead >= 0xf0 && lead <= 0xf4) return 4;
  return 0;
}

/**
 * Index of the first byte of the first invalid UTF-8 sequence in bytes[0, end), or -1 when all of it
 * is valid. A sequence cut off by `end` counts as invalid; callers that stream hold such a tail back
 * (see incompleteTailLength). Follows the Unicode well-formedness table: no overlong forms, no
 * surrogates (ED A0..BF), nothing above U+10FFFF.
 */
export function firstInvalidUtf8(bytes: Uint8Array, end = bytes.length): number {
  let i = 0;
  while (i < end) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    const len = sequenceLength(b);
    if (len === 0 || i + len > end) return i;
    const b1 = bytes[i + 1]!;
    // The second byte's allowed range depends on the lead byte; later bytes are always 80..BF.
    const lo = b === 0xe0 ? 0xa0 : b === 0xf0 ? 0x90 : 0x80;
    const hi = b === 0xed ? 0x9f : b === 0xf4 ? 0x8f : 0xbf;
    if (b1 < lo || b1 > hi) return i;
    for (let k = 2; k < len; k++) {
      const bk = bytes[i + k]!;
      if (bk < 0x80 || bk > 0xbf) return i;
    }
    i += len;
  }
  return -1;
}

/**
 * How many bytes at the end of `bytes` are the start of a multi-byte sequence that the next chunk
 * will complete (0 to 3). A streaming reader keeps them for the next chunk instead of calling them
 * invalid.
 */
export function incompleteTailLength(bytes: Uint8Array): number {
  const n = bytes.length;
  for (let back = 1; back <= Math.min(3, n); back++) {
    const b = bytes[n - back]!;
    if ((b & 0xc0) === 0x80) continue; // continuation byte: keep looking for the lead
    const len = sequenceLength(b);
    return len > back ? back : 0;
  }
  return 0;
}

/**
 * Index (in bytes from `bytes[0]`) of the first unpaired surrogate in UTF-16 data, or -1. Used only
 * to name the offset after the decoder has refused the data.
 */
export function firstInvalidUtf16(bytes: Uint8Array, littleEndian: boolean): number {
  const unit = (i: number) => (littleEndian ? bytes[i]! | (bytes[i + 1]! << 8) : (bytes[i]! << 8) | bytes[i + 1]!);
  let i = 0;
  for (; i + 1 < bytes.length; i += 2) {
    const u = unit(i);
    if (u >= 0xd800 && u <= 0xdbff) {
      if (i + 3 >= bytes.length) return i;
      const next = unit(i + 2);
      if (next < 0xdc00 || next > 0xdfff) return i;
      i += 2;
    } else if (u >= 0xdc00 && u <= 0xdfff) {
      return i;
    }
  }
  return i < bytes.length ? i : -1;
}
