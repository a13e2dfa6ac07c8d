// Strategy options, their defaults for a given model, and the one place a strategy is built.

import { CtxError } from '../../errors.js';
import type { ModelConfig } from '../../model/config.js';
import { clexOf, ropeCapacity, type RopeScalingOptions } from '../rope.js';
import { clexScaleFactor } from '../rope-clex.js';
import { BeaconAppendStrategy } from './beacon-append.js';
import { BeaconInterleaveStrategy } from './beacon-interleave.js';
import { chooseRatio, type RatioChoice } from './beacon-ratio.js';
import { FocusStrategy } from './focus.js';
import type { FocusSettings } from '../../model/focus-config.js';
import { FullStrategy } from './full.js';
import { SelectStrategy } from './select.js';
import { StreamStrategy } from './stream.js';
import type { Strategy, StrategyContext, StrategyName } from './strategy.js';

export type { Strategy, StrategyName } from './strategy.js';

/** What a user may set (CLI flags); everything is optional and defaults per model. */
export interface StrategyOptions {
  strategy?: StrategyName | 'auto';
  /** Prefill step in tokens (full, stream, focus below its threshold; select uses min(chunk, nLocal)). */
  chunk?: number;
  /** RoPE scaling for `full` (PI, NTK, dynamic NTK, YaRN, truncated; clex for a CLEX checkpoint). */
  rope?: RopeScalingOptions | null;
  sink?: number;
  recent?: number;
  nInit?: number;
  topK?: number;
  nLocal?: number;
  /** TokenSelect selection reuse threshold while decoding; null disables. */
  reuseCosine?: number | null;
  /** Force the beacon condensing ratio instead of choosing it from the length. */
  beaconRatio?: number;
}

/** Fully resolved parameters of one strategy (what a plan shows and a cache key includes). */
export type ResolvedStrategy =
  | { name: 'full'; chunk: number; capacity: number; rope: RopeScalingOptions | null }
  | { name: 'stream'; chunk: number; sink: number; recent: number }
  | { name: 'select'; chunk: number; nInit: number; topK: number; nLocal: number; reuseCosine: number | null }
  | { name: 'beacon'; version: 'v1' | 'v3'; ratio: number; window: number; stride: number; ratioChoice: RatioChoice }
  | { name: 'focus'; chunk: number; capacity: number; settings: FocusSettings };

/** Positions the beacon ratio rule works with: P × the model's own rope scaling factor. */
export function beaconPositions(c: ModelConfig): number {
  return ropeCapacity(c, null);
}

/**
 * Resolves the strategy for a prompt of `plannedTokens` tokens (document + question) followed by
 * up to `answerTokens` generated ones. `auto`: beacon when the model has beacon weights and
 * the document fits its ratios, else select when it exceeds the window, else full.
 */
export function resolveStrategy(c: ModelConfig, o: StrategyOptions, plannedTokens: number, answerTokens = 512): ResolvedStrategy {
  const P = c.maxPositions;
  const chunk = o.chunk ?? 512;
  const name = o.strategy && o.strategy !== 'auto' ? o.strategy : autoStrategy(c, o, plannedTokens, answerTokens);
  switch (name) {
    case 'full': {
      const rope = fullRope(c, o.rope ?? null);
      return { name, chunk, capacity: ropeCapacity(c, rope), rope };
    }
    case 'stream': {
      const sink = o.sink ?? 4;
      const recent = o.recent ?? P - sink;
      if (sink + recent > P) {
        throw new CtxError('usage', `stream keeps sink ${sink} + recent ${recent} = ${sink + recent} positions; the model has ${P}`);
      }
      return { name, sink, recent, chunk: Math.min(chunk, recent) };
    }
    case 'select': {
      const nInit = o.nInit ?? Math.min(128, Math.floor(P / 16));
      // The paper's 128 / 512 / 2048 on windows of 4K and more. Prefill steps are nLocal long and each step's
      // selection is voted from the step's mean query, so a small window votes from short steps (window / 8):
      // on the demo model (window 1,024) steps of 128 instead of 256 took 4 people at 8K from 45 to 48 of 50.
      const nLocal = o.nLocal ?? Math.min(512, Math.floor(P / 8));
      const topK = o.topK ?? Math.min(2048, Math.floor(P / 2));
      const sel = { name, nInit, topK, nLocal, chunk: Math.min(chunk, nLocal), reuseCosine: o.reuseCosine === undefined ? 0.9 : o.reuseCosine };
      const reach = nInit + topK + Math.max(nLocal, sel.chunk);
      if (reach > P) {
        throw new CtxError('usage', `select attends to init ${nInit} + top ${topK} + local ${Math.max(nLocal, sel.chunk)} = ${reach} positions; the model has ${P}`);
      }
      return sel;
    }
    case 'beacon': {
      const b = c.beacon;
      if (!b) throw new CtxError('usage', 'the beacon strategy needs a beacon checkpoint (beacon_* tensors); this model has none — use --strategy select');
      const ratioChoice = chooseRatio(b, beaconPositions(c), plannedTokens, o.beaconRatio);
      return { name, version: b.version, ratio: ratioChoice.ratio, window: b.window, stride: b.stride, ratioChoice };
    }
    case 'focus': {
      // Its settings are the checkpoint's (config.json, with the official defaults): a FocusLLM model
      // is trained for one local window and stride.
      if (!c.focus) throw new CtxError('usage', 'the focus strategy needs a FocusLLM checkpoint (memory_stride in config.json, beacon_* candidate projections); this model has none — use --strategy select');
      return { name, chunk, capacity: ropeCapacity(c, null), settings: c.focus };
    }
  }
}

/**
 * `full`'s RoPE scaling: the user's, or the model's own CLEX made explicit (plans, events and cache
 * keys then name it, and `--rope clex` on a CLEX model is the same run). CLEX's factor is its
 * max_factor, so the capacity is its reach P·max_factor; t is chosen per call from the length.
 */
function fullRope(c: ModelConfig, user: RopeScalingOptions | null): RopeScalingOptions | null {
  if (user?.type === 'clex' && c.ropeScaling?.type !== 'clex') {
    throw new CtxError('usage', '--rope clex needs a CLEX checkpoint (rope_scaling type "clex" in config.json and its model.clex_layer tensors); this model has none');
  }
  const clex = clexOf(c, user);
  return clex ? { type: 'clex', factor: clex.maxFactor } : user;
}

function autoStrategy(c: ModelConfig, o: StrategyOptions, promptTokens: number, answerTokens: number): StrategyName {
  return autoChoice(c, o, promptTokens, answerTokens).name;
}

/**
 * What `auto` picks for a prompt of `promptTokens` followed by up to `answerTokens`, and why, in
 * words for the plan line: beacon when the model has beacon weights and a trained ratio reaches the
 * length; else, past what full attention holds, focus on a FocusLLM checkpoint and select on any
 * other; else full.
 */
function autoChoice(c: ModelConfig, o: StrategyOptions, promptTokens: number, answerTokens: number): { name: StrategyName; reason: string } {
  const n = (x: number) => x.toLocaleString('en-US');
  const choice = c.beacon ? chooseRatio(c.beacon, beaconPositions(c), promptTokens, o.beaconRatio) : null;
  // The ratio is chosen for the prompt and the checkpoint's answer reserve (adapt-F); the answer
  // budget (--max-tokens) must fit too, or beacon would stop the answer short.
  if (choice?.fits && promptTokens + answerTokens <= choice.maxTokens) {
    return { name: 'beacon', reason: beaconReason(choice, promptTokens, answerTokens) };
  }
  const capacity = ropeCapacity(c, fullRope(c, o.rope ?? null));
  const planned = promptTokens + answerTokens;
  const held = c.ropeScaling?.type === 'clex' && !o.rope ? `its CLEX reach of ${n(capacity)} tokens` : `its ${n(capacity)}-token window`;
  if (planned <= capacity) return { name: 'full', reason: `the prompt and answer (${n(planned)} tokens) fit ${held}` };
  const past = `the prompt and answer (${n(planned)} tokens) are past ${held}`;
  // A FocusLLM checkpoint past its window: what it was trained for.
  if (c.focus) return { name: 'focus', reason: `${past}, and the model is a FocusLLM checkpoint` };
  const beacons = choice ? `its beacons hold at most ${n(choice.maxTokens)}` : 'it has no beacon weights';
  return { name: 'select', reason: `${past}, and ${beacons}` };
}

/**
 * Why a beacon ratio holds this run, every number named: what the ratio holds, the prompt (prefix,
 * document and question), and the answer reserve the ratio was chosen for (the checkpoint's adapt-F),
 * or the answer budget when --max-tokens asks for more.
 */
export function beaconReason(choice: RatioChoice, promptTokens: number, answerTokens: number): string {
  const n = (x: number) => x.toLocaleString('en-US');
  const reserve = choice.neededTokens - promptTokens;
  const answer = answerTokens > reserve ? `the answer budget (--max-tokens ${n(answerTokens)})` : `the checkpoint's answer reserve (${n(reserve)} tokens)`;
  return `the model has beacon weights, and ratio ${choice.ratio} holds ${n(choice.maxTokens)} tokens, enough for the prompt (${n(promptTokens)} tokens) and ${answer}`;
}

/** Why `auto` chose the strategy for this run, or null when the options name one. */
export function strategyReason(c: ModelConfig, o: StrategyOptions, promptTokens: number, answerTokens = 512): string | null {
  if (o.strategy && o.strategy !== 'auto') return null;
  return autoChoice(c, o, promptTokens, answerTokens).reason;
}

export function buildStrategy(ctx: StrategyContext, r: ResolvedStrategy): Strategy {
  const c = ctx.config;
  switch (r.name) {
    case 'full':
      return new FullStrategy(ctx, { chunk: r.chunk, capacity: r.capacity });
    case 'stream':
      return new StreamStrategy(ctx, { sink: r.sink, recent: r.recent, chunk: r.chunk });
    case 'select':
      return new SelectStrategy(ctx, r);
    case 'beacon': {
      const b = c.beacon!;
      const maxTokens = r.ratioChoice.maxTokens;
      return b.pos === 'interleave'
        ? new BeaconInterleaveStrategy(ctx, { window: b.window, ratio: r.ratio, sinkSize: b.sinkSize, maxTokens })
        : new BeaconAppendStrategy(ctx, { window: b.window, stride: b.stride, ratio: r.ratio, attn: b.attn, attendPrev: b.attendPrev, maxTokens });
    }
    case 'focus':
      return new FocusStrategy(ctx, { settings: r.settings, capacity: r.capacity, chunk: r.chunk });
  }
}

/**
 * The plan line's strategy. With `lengths` (the prompt, and the prompt + answer reserve) a CLEX
 * run also shows its scale factor t: while reading the prompt → by the end of the answer.
 */
export function describeResolved(r: ResolvedStrategy, lengths?: { prompt: number; planned: number }): string {
  switch (r.name) {
    case 'full': {
      if (r.rope?.type === 'clex') {
        const P = r.capacity / r.rope.factor;
        const t = (L: number) => clexScaleFactor(Math.max(1, Math.min(L, r.capacity)), P, { maxFactor: r.rope!.factor });
        const span = lengths ? `t ${t(lengths.prompt)}${t(lengths.planned) !== t(lengths.prompt) ? `→${t(lengths.planned)}` : ''} of ${r.rope.factor}, ` : '';
        return `full (rope clex: ${span}reach ${r.capacity} = ${P} × max_factor ${r.rope.factor})`;
      }
      return `full (window ${r.capacity}${r.rope ? `, rope ${r.rope.type} ×${r.rope.factor}` : ''})`;
    }
    case 'stream':
      return `stream (sink ${r.sink} + recent ${r.recent})`;
    case 'select':
      return `select (init ${r.nInit} + top ${r.topK} + local ${r.nLocal})`;
    case 'beacon':
      return `beacon ${r.version} (ratio ${r.ratio}, window ${r.window})`;
    case 'focus':
      return `focus (local window ${r.settings.localWindow}, chunks of ${r.settings.stride}, from ${r.settings.shortPromptLimit} tokens)`;
  }
}
