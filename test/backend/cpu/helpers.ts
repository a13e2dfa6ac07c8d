// Shared by the cpu backend's tests: a private cache folder for converted weights, both backends
// on one model, strategy runs through a Session, and comparisons.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend, KvRows } from '../../../src/backend/contract.js';
import { floatBits, halfTable, toHalf } from '../../../src/backend/half.js';
import { mulberry32 } from '../../../src/demo/rng.js';
import { createCpuBackend } from '../../../src/backend/cpu/index.js';
import { createReferenceBackend } from '../../../src/backend/reference/index.js';
import type { Model } from '../../../src/model/model.js';
import { Session } from '../../../src/engine/session.js';
import { resolveStrategy, type StrategyOptions } from '../../../src/engine/strategies/index.js';
import { argmaxRows, maxAbsDiff } from '../../helpers/compare.js';
export { argmaxRows, maxAbsDiff };

let cache: string | undefined;
/** One temporary cache folder per test process for converted weights. */
export function testCacheDir(): string {
  if (!cache) {
    cache = mkdtempSync(join(tmpdir(), 'ctx-cpu-test-cache-'));
    const c = cache;
    process.on('exit', () => rmSync(c, { recursive: true, force: true }));
  }
  return cache;
}

/** A cpu backend; KV in f32 unless asked (the comparisons with the reference are float32 checks). */
export async function cpuBackend(model: Model, dtype: 'f32' | 'q8' | 'q4' = 'f32', kvDtype: 'f32' | 'f16' = 'f32'): Promise<Backend> {
  return createCpuBackend(model, { dtype, kvDtype, cacheDir: testCacheDir(), threads: 2 });
}

export async function bothBackends(model: Model): Promise<{ ref: Backend; cpu: Backend }> {
  return { ref: await createReferenceBackend(model), cpu: await cpuBackend(model) };
}

export interface StrategyRun {
  /** Logits of every document token (prefill), then of each decoded token. */
  prefill: Float32Array;
  steps: Float32Array[];
  greedy: number[];
  stats: Record<string, number>;
}

/**
 * Feeds `doc` (optionally in several calls of `feedSize`) with all logits, then decodes greedily
 * for `decode` tokens, one per call.
 */
export async function runStrategy(backend: Backend, opts: StrategyOptions, doc: Int32Array, decode: number, feedSize = doc.length): Promise<StrategyRun> {
  const V = backend.model.config.vocabSize;
  const session = new Session(backend, resolveStrategy(backend.model.config, opts, doc.length + decode));
  const parts: Float32Array[] = [];
  for (let s = 0; s < doc.length; s += feedSize) parts.push(await session.feed(doc.subarray(s, s + feedSize), { allLogits: true }));
  const prefill = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    prefill.set(p, o);
    o += p.length;
  }
  const greedy = [argmaxRows(prefill.subarray(prefill.length - V), V)[0]];
  const steps: Float32Array[] = [];
  for (let i = 0; i < decode; i++) {
    const l = await session.feed(Int32Array.of(greedy[i]), { decoding: true });
    steps.push(l);
    greedy.push(argmaxRows(l, V)[0]);
  }
  const stats = session.stats() as Record<string, number>;
  session.dispose();
  return { prefill, steps, greedy, stats };
}

/** Largest |Δ| over a whole run (prefill and every decode step). */
export function runDiff(a: StrategyRun, b: StrategyRun): number {
  let m = maxAbsDiff(a.prefill, b.prefill);
  for (let i = 0; i < a.steps.length; i++) m = Math.max(m, maxAbsDiff(a.steps[i], b.steps[i]));
  return m;
}

/**
 * `heads` per-head KV arrays of `rows` × D values drawn uniformly from [−amp, amp) (seeded), in
 * the KV dtype (f16: the halves' bits), and the same values as float32 (exact for f16 too).
 */
export function randomHeads(heads: number, rows: number, D: number, dtype: 'f32' | 'f16', seed: number, amp = 1): { stored: KvRows[]; values: Float32Array[] } {
  const rng = mulberry32(seed);
  const values = Array.from({ length: heads }, () => Float32Array.from({ length: rows * D }, () => (rng() * 2 - 1) * amp));
  if (dtype === 'f32') return { stored: values, values };
  const stored = values.map((v) => {
    const h = new Uint16Array(v.length);
    toHalf(floatBits(v), 0, h, 0, v.length);
    return h;
  });
  return { stored, values: stored.map((h) => Float32Array.from(h, (b) => halfTable()[b])) };
}
