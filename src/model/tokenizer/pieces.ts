// A document's segments as pieces of work: each segment is cut into pieces of about PIECE_CHARS where
// the cut rule allows (cut-rule.ts), otherwise it is one piece (stream.ts does the cutting).
// Encoding the pieces in any order and joining them gives the ids of each segment encoded whole.

/** Characters per piece: a unit of work for a worker, and what one deadline covers on this thread. */
export const PIECE_CHARS = 1 << 17;

export interface EncodedSegments {
  /** The token ids of every segment, concatenated in order. */
  ids: Int32Array;
  /** segmentStarts[i] is the index in `ids` of segment i's first token (equal to the next start when empty). */
  segmentStarts: Int32Array;
}

/** Concatenates each segment's ids in order and records where each segment starts. */
export function joinSegments(perSegment: Int32Array[]): EncodedSegments {
  let total = 0;
  for (const r of perSegment) total += r.length;
  const ids = new Int32Array(total);
  const segmentStarts = new Int32Array(perSegment.length);
  let at = 0;
  perSegment.forEach((r, s) => {
    segmentStarts[s] = at;
    ids.set(r, at);
    at += r.length;
  });
  return { ids, segmentStarts };
}
