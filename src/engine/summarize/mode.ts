// Which way a summary is made, and why (the reason is shown to the user).
//
//   one-pass      the whole document is read into one session (full attention when it fits the
//                 window, beacon when the model can condense it, else select) and the summary is
//                 generated from that: best when the model sees all of it.
//   hierarchical  sections sized to the window are summarised one by one with full attention, then
//                 the summaries are combined (sections.ts): for a model without beacon weights,
//                 select keeps only a few thousand tokens per step, which is weak for the gist of a
//                 whole document (research/ALGORITHMS.md §4).
//
// auto takes one-pass when the document fits the window, when the model has beacon weights and one
// of its trained ratios condenses the document into its positions, or when --strategy names a
// strategy; otherwise hierarchical — unless the window is too small for hierarchical prompts.

import type { RatioChoice } from '../strategies/beacon-ratio.js';

export type SummaryMode = 'one-pass' | 'hierarchical';
export type ModeRequest = SummaryMode | 'auto';

export interface ModeInputs {
  requested: ModeRequest;
  /** The --strategy given ('auto' when none). */
  strategy: string;
  /** Tokens of a one-pass prompt (system prefix + document + instruction). */
  promptTokens: number;
  /** Tokens reserved for the summary. */
  answerTokens: number;
  /** Positions the model attends to with full attention. */
  window: number;
  /** The beacon ratio for this length, or null when the model has no beacon weights. */
  beacon: RatioChoice | null;
  /** Why the window is too small for hierarchical summaries (the numbers), or null. */
  hierarchicalBlocked: string | null;
}

export interface ModeDecision {
  mode: SummaryMode;
  reason: string;
}

const fmt = (n: number) => n.toLocaleString('en-US');

export function chooseMode(i: ModeInputs): ModeDecision {
  if (i.requested !== 'auto') return { mode: i.requested, reason: `asked for with --mode ${i.requested}` };
  const need = i.promptTokens + i.answerTokens;
  if (i.strategy !== 'auto') return { mode: 'one-pass', reason: `--strategy ${i.strategy} reads the whole document in one pass` };
  if (need <= i.window) {
    return { mode: 'one-pass', reason: `the document fits the model's window (${fmt(need)} of ${fmt(i.window)} tokens with the summary)` };
  }
  if (i.beacon?.fits) {
    return { mode: 'one-pass', reason: `the model has beacon weights: ratio ${i.beacon.ratio} condenses ${fmt(need)} tokens into its ${fmt(i.window)} positions` };
  }
  const past = `the document (${fmt(i.promptTokens)} tokens) exceeds the model's window (${fmt(i.window)})`;
  if (i.hierarchicalBlocked) {
    return { mode: 'one-pass', reason: `${past}, but that window is too small for a hierarchical summary (${i.hierarchicalBlocked})` };
  }
  const why = i.beacon ? `even beacon ratio ${i.beacon.ratio} cannot condense it` : 'the model has no beacon weights';
  return { mode: 'hierarchical', reason: `${past} and ${why}: sections are summarised within the window, then combined` };
}
