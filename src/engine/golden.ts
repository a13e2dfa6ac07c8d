// Golden cases (../shared/golden format, README there): a model folder, a prompt, and the logits
// and greedy ids the papers' reference code produced. runGoldenCase feeds the prompt in one call
// (the strategy splits it into windows as the reference does), then decodes greedily one token per
// call, and compares every recorded logit, the greedy ids, the beacon memory sizes and the ratio.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendName } from '../backend/contract.js';
import { createBackend } from '../backend/index.js';
import { openModel } from '../model/model.js';
import { SafetensorsFile, toFloat32 } from '../model/safetensors.js';
import { Session } from './session.js';
import { resolveStrategy } from './strategies/index.js';

export interface GoldenCase {
  name: string;
  kind: 'plain' | 'beacon_v3_interleave' | 'beacon_v1_append_step_expansion' | string;
  model: string;
  input_ids: number[];
  greedy_steps: number;
  expected_greedy_ids: number[];
  chosen_ratio?: number;
  memory_after_prefill?: Record<string, number>;
  memory_after_generation?: Record<string, number>;
  tolerance?: { suggested_atol?: number };
}

export interface GoldenResult {
  name: string;
  maxDiffPrefill: number;
  maxDiffSteps: number;
  greedyEqual: boolean;
  /** null when the case records no memory sizes. */
  memoryEqual: boolean | null;
  ratioEqual: boolean | null;
  atol: number;
  passed: boolean;
  detail: string[];
  seconds: number;
}

/** Every folder under root (recursively) that holds a case.json. */
export function findGoldenCases(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    if (existsSync(join(dir, 'case.json'))) out.push(dir);
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

function argmax(v: Float32Array, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (v[offset + i] > v[offset + best]) best = i;
  return best;
}

function maxAbsDiff(a: Float32Array, b: Float32Array, bOffset = 0): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[bOffset + i]);
    if (!(d <= m)) m = d; // NaN propagates as a failure
  }
  return m;
}

export async function runGoldenCase(root: string, caseDir: string, backendName: BackendName): Promise<GoldenResult> {
  const t0 = performance.now();
  const gc = JSON.parse(readFileSync(join(caseDir, 'case.json'), 'utf8')) as GoldenCase;
  const model = openModel(join(root, gc.model));
  const V = model.config.vocabSize;
  const expected = SafetensorsFile.open(join(caseDir, 'expected.safetensors'));
  const tensor = (name: string) => toFloat32(expected.tensors.get(name)!, expected.readBytes(name));
  const prefill = tensor('prefill_logits');
  const steps = tensor('step_logits');
  const atol = gc.tolerance?.suggested_atol ?? 1e-3;
  const detail: string[] = [];

  const backend = await createBackend(backendName, model);
  const n = gc.input_ids.length;
  const resolved = gc.kind === 'plain'
    ? resolveStrategy(model.config, { strategy: 'full' }, n)
    : resolveStrategy(model.config, { strategy: 'beacon' }, n);
  const session = new Session(backend, resolved);

  const logits = await session.feed(Int32Array.from(gc.input_ids), { allLogits: true });
  if (logits.length !== n * V) throw new Error(`${gc.name}: got ${logits.length / V} logit rows, expected ${n}`);
  const maxDiffPrefill = maxAbsDiff(logits, prefill);

  let ratioEqual: boolean | null = null;
  if (gc.chosen_ratio !== undefined) {
    const got = resolved.name === 'beacon' ? resolved.ratio : -1;
    ratioEqual = got === gc.chosen_ratio;
    if (!ratioEqual) detail.push(`ratio ${got} != ${gc.chosen_ratio}`);
  }
  const memDiff = (want: Record<string, number> | undefined, label: string): boolean | null => {
    if (!want) return null;
    const got = session.stats() as Record<string, number>;
    const bad = Object.entries(want).filter(([k, v]) => got[k] !== v);
    for (const [k, v] of bad) detail.push(`${label} ${k} ${got[k]} != ${v}`);
    return bad.length === 0;
  };
  const memPrefill = memDiff(gc.memory_after_prefill, 'after prefill');

  const ids: number[] = [argmax(logits, (n - 1) * V, V)];
  let maxDiffSteps = 0;
  for (let i = 0; i < gc.greedy_steps; i++) {
    const step = await session.feed(Int32Array.of(ids[i]), { decoding: true });
    maxDiffSteps = Math.max(maxDiffSteps, maxAbsDiff(step, steps, i * V));
    if (i + 1 < gc.greedy_steps) ids.push(argmax(step, 0, V));
  }
  const memGen = memDiff(gc.memory_after_generation, 'after generation');
  const greedyEqual = ids.length === gc.expected_greedy_ids.length && ids.every((t, i) => t === gc.expected_greedy_ids[i]);
  if (!greedyEqual) detail.push(`greedy ids differ: got ${ids.join(',')}`);
  const memoryEqual = memPrefill === null && memGen === null ? null : memPrefill !== false && memGen !== false;
  session.dispose();
  await backend.dispose();
  const passed = greedyEqual && maxDiffPrefill <= atol && maxDiffSteps <= atol && memoryEqual !== false && ratioEqual !== false;
  return {
    name: gc.name,
    maxDiffPrefill,
    maxDiffSteps,
    greedyEqual,
    memoryEqual,
    ratioEqual,
    atol,
    passed,
    detail,
    seconds: (performance.now() - t0) / 1000,
  };
}

export function formatGoldenResult(r: GoldenResult): string {
  const mem = r.memoryEqual === null ? 'memory n/a' : r.memoryEqual ? 'memory equal' : 'memory DIFFERS';
  const ratio = r.ratioEqual === null ? '' : r.ratioEqual ? ', ratio equal' : ', ratio DIFFERS';
  return `${r.passed ? 'PASS' : 'FAIL'}  ${r.name}  max|Δlogit| prefill ${r.maxDiffPrefill.toExponential(2)} steps ${r.maxDiffSteps.toExponential(2)}  greedy ${r.greedyEqual ? 'equal' : 'DIFFER'}, ${mem}${ratio}  (${r.seconds.toFixed(2)} s)${r.detail.length ? `\n      ${r.detail.join('\n      ')}` : ''}`;
}
