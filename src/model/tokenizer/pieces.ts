// A document's segments as pieces of work: each segment is cut into pieces of about PIECE_CHARS where
// the cut rule allows (cut-rule.ts), otherwise it is one piece. Encoding the pieces in any order and
// assembling them gives the ids of each segment encoded whole.

import type { Segment } from '../../input/document.js';
import { cutText, type CutRule } from './cut-rule.js';

/** Characters per piece: a unit of work for a worker, and what one deadline covers on this thread. */
export const PIECE_CHARS = 1 << 17;

/** A piece of one segment. */
export interface Piece {
  segment: number;
  text: string;
}

export interface EncodedSegments {
  /** The token ids of every segment, concatenated in order. */
  ids: Int32Array;
  /** segmentStarts[i] is the index in `ids` of segment i's first token (equal to the next start when empty). */
  segmentStarts: Int32Array;
}

export function splitIntoPieces(segments: Segment[], rule: CutRule | null): Piece[] {
  const pieces: Piece[] = [];
  segments.forEach((s, segment) => {
    for (const text of rule === null ? [s.text] : cutText(s.text, rule, PIECE_CHARS)) pieces.push({ segment, text });
  });
  return pieces;
}

/** Concatenates the pieces' ids in order and records where each segment starts. */
export function assemble(segmentCount: number, pieces: Piece[], results: Int32Array[]): EncodedSegments {
  let total = 0;
  for (const r of results) total += r.length;
  const ids = new Int32Array(total);
  const segmentStarts = new Int32Array(segmentCount);
  let at = 0;
  let p = 0;
  for (let s = 0; s < segmentCount; s++) {
    segmentStarts[s] = at;
    while (p < pieces.length && pieces[p].segment === s) {
      ids.set(results[p], at);
      at += results[p].length;
      p++;
    }
  }
  return { ids, segmentStarts };
}
