// Shared by the native backend's tests: tiny random models on disk, scripted step sequences that can
// be replayed on any backend, and golden-case replays.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend, RopeTable, StepRequest } from '../../../src/backend/contract.js';
import { openModel, type Model } from '../../../src/model/model.js';
import { SafetensorsFile, toFloat32 } from '../../../src/model/safetensors.js';
import { baseInvFreq } from '../../../src/engine/rope.js';
import { Session } from '../../../src/engine/session.js';
import { resolveStrategy } from '../../../src/engine/strategies/index.js';
import { writeRandomModel, type RandomModelSpec } from '../../../tools/random-model.js';
import { argmaxRows, maxAbsDiff } from '../../helpers/compare.js';
export { argmaxRows, maxAbsDiff };

export const GOLDEN_ROOT = join(import.meta.dirname, '../../../../shared/golden');

/** Writes a random model into a fresh temp folder and opens it; `cleanup` removes the folder. */
export function tempModel(spec: RandomModelSpec): { model: Model; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-cuda-test-'));
  writeRandomModel(dir, spec);
  return { model: openModel(dir), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function ropeOf(model: Model, scale = 1): RopeTable {
  const c = model.config;
  return { invFreq: baseInvFreq(c.headDim, c.ropeTheta), scale };
}

export const range = (start: number, n: number) => Int32Array.from({ length: n }, (_, i) => start + i);

/** A deterministic pseudo-random token stream in [3, V). */
export function tokens(n: number, V: number, seed = 1): Int32Array {
  let s = seed >>> 0;
  return Int32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 3 + (s % (V - 3));
  });
}

/** One operation of a scripted run: a step, a retain, or a snapshot restored into a fresh sequence. */
export type Op = { step: StepRequest } | { retain: Int32Array } | { reload: true };

export interface RunResult {
  logits: Float32Array[];
  selections: Int32Array[][];
  lengths: number[];
}

/** Replays ops on a new sequence of `backend`. */
export async function runOps(backend: Backend, ops: Op[]): Promise<RunResult> {
  let seq = backend.newSequence();
  const res: RunResult = { logits: [], selections: [], lengths: [] };
  for (const op of ops) {
    if ('step' in op) {
      const r = await seq.step(op.step);
      res.logits.push(r.logits);
      if (r.selection) res.selections.push(r.selection);
    } else if ('retain' in op) {
      seq.retain(op.retain);
    } else {
      const snap = seq.snapshot();
      seq.dispose();
      seq = backend.newSequence();
      seq.restore(snap);
    }
    res.lengths.push(seq.length);
  }
  seq.dispose();
  return res;
}

/** The largest |Δ| between two runs' logits; throws when their shapes or selections differ. */
export function compareRuns(a: RunResult, b: RunResult): number {
  if (a.logits.length !== b.logits.length) throw new Error('runs have different step counts');
  if (a.lengths.join() !== b.lengths.join()) throw new Error(`lengths differ: ${a.lengths} vs ${b.lengths}`);
  a.selections.forEach((sel, s) =>
    sel.forEach((layer, l) => {
      const other = b.selections[s]?.[l];
      if (!other || layer.join() !== other.join()) {
        throw new Error(`selection of step ${s} layer ${l} differs: [${layer}] vs [${other}]`);
      }
    }),
  );
  return Math.max(0, ...a.logits.map((l, i) => maxAbsDiff(l, b.logits[i])));
}

export interface GoldenOutcome {
  name: string;
  /** max |Δlogit| against the expected tensors, decoding teacher-forced on the expected ids */
  maxDiff: number;
  greedyEqual: boolean;
  /** how many of the greedy choices matched the expected ids */
  greedyMatches: number;
  greedySteps: number;
  atol: number;
}

/**
 * Replays one ../shared/golden case (README there) on `backend` the way src/engine/golden.ts does:
 * the prompt in one feed (the strategy windows it), then one token per feed. Decoding is
 * teacher-forced on the expected greedy ids, so maxDiff measures the numbers even where a
 * lower-precision path would pick another token; greedyEqual says whether every argmax matched.
 */
export async function replayGolden(caseDir: string, backendFor: (m: Model) => Promise<Backend>): Promise<GoldenOutcome> {
  const gc = JSON.parse(readFileSync(join(caseDir, 'case.json'), 'utf8'));
  const model = openModel(join(GOLDEN_ROOT, gc.model));
  const V = model.config.vocabSize;
  const expected = SafetensorsFile.open(join(caseDir, 'expected.safetensors'));
  const tensor = (name: string) => toFloat32(expected.tensors.get(name)!, expected.readBytes(name));
  const prefill = tensor('prefill_logits');
  const steps = tensor('step_logits');
  const want: number[] = gc.expected_greedy_ids;
  const backend = await backendFor(model);
  const n = gc.input_ids.length;
  const resolved = resolveStrategy(model.config, { strategy: gc.kind === 'plain' ? 'full' : 'beacon' }, n);
  const session = new Session(backend, resolved);
  const logits = await session.feed(Int32Array.from(gc.input_ids), { allLogits: true });
  let maxDiff = maxAbsDiff(logits, prefill);
  const got = [argmaxRows(logits.subarray((n - 1) * V), V)[0]];
  for (let i = 0; i < gc.greedy_steps; i++) {
    const step = await session.feed(Int32Array.of(want[i]), { decoding: true });
    maxDiff = Math.max(maxDiff, maxAbsDiff(step, steps.subarray(i * V, (i + 1) * V)));
    if (i + 1 < gc.greedy_steps) got.push(argmaxRows(step, V)[0]);
  }
  session.dispose();
  await backend.dispose();
  return {
    name: gc.name,
    maxDiff,
    greedyEqual: got.join() === want.join(),
    greedyMatches: got.filter((t, i) => t === want[i]).length,
    greedySteps: want.length,
    atol: gc.tolerance?.suggested_atol ?? 1e-3,
  };
}
