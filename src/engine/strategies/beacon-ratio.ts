// The beacon condensing ratio, fixed once per document before the first window (ALGORITHMS.md §1.5).
//
// A window of W raw tokens leaves W/r beacon rows, so after n tokens the largest position is about
// (n − W)/r + W. With P addressable positions, ratio r can hold maxlen(r) = (P − W)·r + W tokens
// (r = 0 means no compression: P). "adapt-F" takes the smallest listed ratio whose maxlen covers
// L = document tokens + F (F reserved for the answer), else the largest. The reference looks only
// at its first call; ctx uses the whole planned length.

import type { BeaconConfig } from '../../model/config.js';

export interface RatioChoice {
  ratio: number;
  /** Tokens this ratio can hold: (P − W)·r + W. */
  maxTokens: number;
  /** The length the choice was made for: the prompt (prefix, document, question) + the checkpoint's answer reserve F. */
  neededTokens: number;
  fits: boolean;
  /** True when the user named the ratio (--beacon-ratio) rather than ctx choosing it. */
  forced: boolean;
  /** Ratios the checkpoint was trained with (those that divide the stride). */
  candidates: number[];
}

export function beaconMaxTokens(positions: number, window: number, ratio: number): number {
  return ratio === 0 ? positions : (positions - window) * ratio + window;
}

/** Answer reserve F from "adapt-F" (1024 when the mix names none). */
export function adaptReserve(mix: string): number {
  const m = /^adapt-(\d+)$/.exec(mix);
  return m ? Number(m[1]) : 1024;
}

export function chooseRatio(b: BeaconConfig, positions: number, promptTokens: number, forced?: number): RatioChoice {
  const candidates = [...new Set(b.ratios)].filter((r) => r === 0 || (r <= b.window && b.stride % r === 0)).sort((x, y) => x - y);
  const neededTokens = promptTokens + adaptReserve(b.ratioMix);
  const pick = (ratio: number): RatioChoice => {
    const maxTokens = beaconMaxTokens(positions, b.window, ratio);
    return { ratio, maxTokens, neededTokens, fits: maxTokens >= neededTokens, forced: forced !== undefined, candidates };
  };
  if (forced !== undefined) return pick(forced);
  if (candidates.length === 0) throw new Error(`no beacon ratio in [${b.ratios}] divides the stride ${b.stride}`);
  // Non-adaptive mixes (training-time "step-random" etc.) with several ratios: ctx adapts.
  if (candidates.length === 1) return pick(candidates[0]);
  for (const r of candidates) {
    if (beaconMaxTokens(positions, b.window, r) >= neededTokens) return pick(r);
  }
  return pick(candidates[candidates.length - 1]);
}
