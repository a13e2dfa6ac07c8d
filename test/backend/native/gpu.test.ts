// The native backend on a GPU (`--backend cuda`): the CUDA kernels in ctx_cuda_kernels.so. Skips
// with the probe's reason where there is none (CI). Run on a GPU machine with
// `node scripts/run-tests.js test/backend/native` and record the run in native/README.md ("GPU runs").
//
//   f32  — the correctness mode: every scenario against the reference backend, and the golden
//          cases, within 1e-3.
//   bf16 — the fast path: against the host kernels' bf16 emulation (same roundings at the same
//          points, so only accumulation order differs), and on the golden cases, where it must make
//          the same greedy choices as the emulation does; its max |Δlogit| is reported.
// Models with head_dim 64 and 128 and steps longer than 8 rows drive the tensor-core kernels
// (gemmBf16Mma, flashMma); the small ones drive the SIMT, GEMV and split-KV decode kernels.

import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import type { Backend } from '../../../src/backend/contract.js';
import { NativeBackend, createNativeBackend, probeDevices } from '../../../src/backend/native/index.js';
import { createReferenceBackend } from '../../../src/backend/reference/index.js';
import { findGoldenCases } from '../../../src/engine/golden.js';
import type { Model } from '../../../src/model/model.js';
import { PRESETS, type RandomModelSpec } from '../../../tools/random-model.js';
import { compareRuns, GOLDEN_ROOT, replayGolden, runOps, tempModel, type Op, type RunResult } from './helpers.js';
import { beaconOps, causalOps, rangesOps, selectOps } from './scenarios.js';

const probe = probeDevices();
const skip = probe.available ? false : `no GPU: ${probe.reason}`;

const MODELS: Record<string, RandomModelSpec> = {
  'qwen2 GQA, head dim 8': { ...PRESETS.tiny, seed: 5 },
  'qwen2 beacon v3, head dim 8': { ...PRESETS['tiny-beacon'], seed: 7 },
  'llama beacon v1 (q/k/v/o), head dim 8': { ...PRESETS['tiny-beacon-v1'], seed: 8 },
  'qwen2 GQA, head dim 64': {
    arch: 'qwen2', vocab: 1000, hidden: 256, intermediate: 512, layers: 2, heads: 4, kvHeads: 2, maxPositions: 4096, seed: 11,
    beacon: { version: 'v3', window: 64, ratios: [4] },
  },
  'llama MQA, head dim 128': {
    arch: 'llama', vocab: 777, hidden: 512, intermediate: 1024, layers: 2, heads: 4, kvHeads: 1, maxPositions: 4096, seed: 12,
    beacon: { version: 'v1', window: 64, stride: 64, ratios: [4] },
  },
};

/** Longer steps for the larger models, so the tiled kernels see several tiles and ragged edges. */
const scaleFor = (name: string) => (name.includes('head dim 8') ? 1 : 6);
const SCENARIOS: Array<[string, (m: Model, scale: number) => Op[]]> = [
  ['causal steps, retain, snapshot/restore', causalOps],
  ['ranges masks', rangesOps],
  ['beacon rows', beaconOps],
  ['TokenSelect with reuse', selectOps],
];

function logitScale(r: RunResult): number {
  let m = 0;
  for (const l of r.logits) for (const v of l) m = Math.max(m, Math.abs(v));
  return m;
}

describe('native backend on the GPU', { skip }, () => {
  const made: Array<{ cleanup: () => void }> = [];
  const backends = new Map<string, { model: Model; ref: Backend; emul: Backend; f32: Backend; bf16: Backend }>();

  before(async () => {
    for (const [name, spec] of Object.entries(MODELS)) {
      const m = tempModel(spec);
      made.push(m);
      backends.set(name, {
        model: m.model,
        ref: await createReferenceBackend(m.model),
        emul: await createNativeBackend(m.model, { device: 'host', dtype: 'bf16' }),
        f32: await createNativeBackend(m.model, { dtype: 'f32' }),
        bf16: await createNativeBackend(m.model, { dtype: 'bf16' }),
      });
    }
  });
  after(async () => {
    for (const b of backends.values()) for (const k of [b.emul, b.f32, b.bf16]) await k.dispose();
    for (const m of made) m.cleanup();
  });

  test('the probe names the device', () => {
    assert.ok(probe.devices.length > 0);
    const d = probe.devices[0];
    assert.ok(d.name.length > 0 && d.memoryBytes > 0 && /^\d+\.\d+$/.test(d.computeCapability) && /^\d+\.\d+$/.test(d.driver));
  });

  for (const name of Object.keys(MODELS)) {
    for (const [what, ops] of SCENARIOS) {
      if (what === 'beacon rows' && !MODELS[name].beacon) continue;
      test(`f32 kernels = reference within 1e-3: ${what}, ${name}`, async () => {
        const b = backends.get(name)!;
        const script = ops(b.model, scaleFor(name));
        const d = compareRuns(await runOps(b.ref, script), await runOps(b.f32, script));
        assert.ok(d <= 1e-3, `max |Δlogit| ${d.toExponential(2)}`);
      });
      test(`bf16 kernels = host bf16 emulation: ${what}, ${name}`, async (t) => {
        const b = backends.get(name)!;
        const script = ops(b.model, scaleFor(name));
        const emul = await runOps(b.emul, script);
        const d = compareRuns(emul, await runOps(b.bf16, script));
        const tol = 0.02 * logitScale(emul) + 0.02;
        t.diagnostic(`max |Δlogit| ${d.toExponential(2)} (tolerance ${tol.toFixed(3)})`);
        assert.ok(d <= tol, `max |Δlogit| ${d.toExponential(2)} > ${tol.toFixed(3)}`);
      });
    }
  }

  test('device memory is counted and matrix products can be timed', async () => {
    const b = backends.get('llama MQA, head dim 128')!.bf16 as NativeBackend;
    const mem = b.memory();
    assert.ok(mem.inUseBytes > 0 && mem.peakBytes >= mem.inUseBytes);
    const s = b.timeMatmul(1024, 1024, 1024, 5);
    assert.ok(s > 0 && s < 1, `${s} s per 1024³ product`);
  });
});

const goldenCases = existsSync(GOLDEN_ROOT) ? findGoldenCases(GOLDEN_ROOT) : [];
const goldenSkip = skip || (goldenCases.length === 0 ? `no golden cases at ${GOLDEN_ROOT}` : false);

describe('native backend on the GPU: golden cases', { skip: goldenSkip }, () => {
  for (const dir of goldenCases) {
    const name = dir.split('/').pop()!;
    test(`f32: ${name}`, async () => {
      const r = await replayGolden(dir, (m) => createNativeBackend(m, { dtype: 'f32' }));
      assert.ok(r.greedyEqual, `greedy ids differ (${r.greedyMatches}/${r.greedySteps})`);
      assert.ok(r.maxDiff <= r.atol, `max |Δlogit| ${r.maxDiff.toExponential(2)} > ${r.atol}`);
    });
    test(`bf16: ${name}`, async (t) => {
      const gpu = await replayGolden(dir, (m) => createNativeBackend(m, { dtype: 'bf16' }));
      const emul = await replayGolden(dir, (m) => createNativeBackend(m, { device: 'host', dtype: 'bf16' }));
      t.diagnostic(
        `bf16 max |Δlogit| ${gpu.maxDiff.toFixed(3)}, greedy ${gpu.greedyMatches}/${gpu.greedySteps}` +
          ` (host emulation: ${emul.maxDiff.toFixed(3)}, ${emul.greedyMatches}/${emul.greedySteps})`,
      );
      // Rounding the golden float32 weights to bf16 moves logits by 0.06–0.56, more than the smallest
      // top1−top2 margins of some cases (0.0035–0.02), so those flip a choice even when exact; the GPU
      // must choose as the emulation does, and stay as close to the expected logits.
      assert.equal(gpu.greedyMatches, emul.greedyMatches, 'greedy choices differ from the bf16 emulation');
      assert.ok(gpu.maxDiff <= 1.5 * emul.maxDiff + 0.05, `max |Δlogit| ${gpu.maxDiff.toFixed(3)} vs emulation ${emul.maxDiff.toFixed(3)}`);
    });
  }
});
