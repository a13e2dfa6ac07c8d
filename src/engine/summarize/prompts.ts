// The instructions of a summary, for each kind of step. The text to summarise always comes first
// and the instruction last (conversation.ts), so the model reads the task right before answering.
//
//   whole     the document itself (one pass, or a document that fits one section)
//   section   one part of a longer document (hierarchical mode)
//   combine   summaries of consecutive parts, merged into one (hierarchical mode, not the last step)
//   final     the last combine: the summary the user asked for, from the summaries of all parts
//
// --length sets the final summary's length and, one step shorter, the parts'; --focus is repeated at
// every step so that no step drops what the user cares about; a custom instruction replaces the final
// task and tells every earlier step what to keep. With source markers, every step asks for citations.

import { citeInstruction, type MarkerKinds } from '../citations/markers.js';

export type SummaryLength = 'short' | 'medium' | 'long';

export interface SummaryRequest {
  length: SummaryLength;
  /** A topic to concentrate on. */
  focus?: string;
  /** A custom task instead of "summarize". */
  instruction?: string;
  /** The markers in the document (ask for citations in their form), or null for none. */
  cite: MarkerKinds | null;
}

const WHOLE_LENGTH: Record<SummaryLength, string> = {
  short: 'in three to five sentences',
  medium: 'in a few paragraphs',
  long: 'in detail, section by section',
};

const PART_LENGTH: Record<SummaryLength, string> = {
  short: 'in two or three sentences',
  medium: 'in one paragraph',
  long: 'in a few paragraphs',
};

/** The most tokens a part's summary may take (capped by --max-tokens as well). */
export const PART_TOKENS: Record<SummaryLength, number> = { short: 128, medium: 256, long: 512 };

function focus(r: SummaryRequest): string {
  return r.focus ? `, focusing on ${r.focus}` : '';
}

function cite(r: SummaryRequest): string {
  return r.cite ? citeInstruction(r.cite) : '';
}

/** The whole document is in the prompt: one pass, or a document that fits one section. */
export function wholeInstruction(r: SummaryRequest): string {
  const task = r.instruction ?? `Summarize the document above ${WHOLE_LENGTH[r.length]}${focus(r)}.`;
  return `${task}${cite(r)}`;
}

/** One part of a longer document. */
export function sectionInstruction(r: SummaryRequest): string {
  const keep = r.instruction ? ` Keep what this task needs: ${r.instruction}` : '';
  return `This is one part of a longer document. Summarize it ${PART_LENGTH[r.length]}${focus(r)}.${keep}${cite(r)}`;
}

/** Summaries of consecutive parts merged into the summary of a larger part. */
export function combineInstruction(r: SummaryRequest): string {
  const keep = r.instruction ? ` Keep what this task needs: ${r.instruction}` : '';
  return `Above are summaries of consecutive parts of a longer document. Combine them into one summary ${PART_LENGTH[r.length]}${focus(r)}.${keep}${cite(r)}`;
}

/** The last step: the summary the user asked for, from the summaries of all the parts. */
export function finalInstruction(r: SummaryRequest): string {
  const task = r.instruction ?? `Summarize the whole document ${WHOLE_LENGTH[r.length]}${focus(r)}.`;
  return `Above are summaries of the consecutive parts of a document. ${task}${cite(r)}`;
}
