// The native backend (src/backend/native + native/, `--backend cuda`) run on its C++ CPU kernels,
// against the TypeScript reference backend on identical step sequences, and on the golden cases.
// The CUDA kernels share every line of host code tested here; only the kernel bodies differ
// (test/backend/native/gpu.test.ts runs those where a GPU exists).

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Backend } from '../../../src/backend/contract.js';
import { createNativeBackend, nativeAvailable, probeDevices } from '../../../src/backend/native/index.js';
import { createReferenceBackend } from '../../../src/backend/reference/index.js';
import { Session } from '../../../src/engine/session.js';
import { resolveStrategy, type StrategyOptions } from '../../../src/engine/strategies/index.js';
import { findGoldenCases } from '../../../src/engine/golden.js';
import { CtxError } from '../../../src/errors.js';
import { openModel, type Model } from '../../../src/model/model.js';
import { PRESETS, type RandomModelSpec } from '../../../tools/random-model.js';
import { compareRuns, GOLDEN_ROOT, maxAbsDiff, range, replayGolden, ropeOf, runOps, tempModel, tokens, type Op } from './helpers.js';
import { beaconOps, causalOps, rangesOps, selectOps } from './scenarios.js';

const native = nativeAvailable();
const skip = native.available ? false : `native addon unavailable: ${native.reason}`;
const TOL = 1e-4;

const MODELS: Record<string, RandomModelSpec> = {
  'qwen2 GQA, head dim 8': { ...PRESETS.tiny, seed: 5 },
  'llama MHA, head dim 16, tied embeddings': {
    arch: 'llama', vocab: 300, hidden: 64, intermediate: 96, layers: 2, heads: 4, kvHeads: 4, maxPositions: 256, tie: true, seed: 6,
  },
  'qwen2 beacon v3': { ...PRESETS['tiny-beacon'], seed: 7 },
  'llama beacon v1 (q/k/v/o)': { ...PRESETS['tiny-beacon-v1'], seed: 8 },
  'bf16 weights on disk': { ...PRESETS.tiny, seed: 9, dtype: 'BF16' },
};

describe('native backend on the host kernels vs the reference backend', { skip }, () => {
  const made: Array<{ model: Model; cleanup: () => void }> = [];
  const pairs = new Map<string, { model: Model; ref: Backend; host: Backend }>();

  before(async () => {
    for (const [name, spec] of Object.entries(MODELS)) {
      const m = tempModel(spec);
      made.push(m);
      pairs.set(name, {
        model: m.model,
        ref: await createReferenceBackend(m.model),
        host: await createNativeBackend(m.model, { device: 'host' }),
      });
    }
  });
  after(async () => {
    for (const p of pairs.values()) await p.host.dispose();
    for (const m of made) m.cleanup();
  });

  const compare = async (name: string, ops: (m: Model) => Op[]) => {
    const p = pairs.get(name)!;
    const script = ops(p.model);
    const [a, b] = [await runOps(p.ref, script), await runOps(p.host, script)];
    const d = compareRuns(a, b);
    assert.ok(d <= TOL, `${name}: max |Δlogit| ${d.toExponential(2)} > ${TOL}`);
    return d;
  };

  for (const name of Object.keys(MODELS)) {
    test(`causal steps, chosen logit rows, retain, snapshot/restore, RoPE scale: ${name}`, async () => {
      await compare(name, (m) => causalOps(m));
    });
    test(`ranges masks (v1 layout): ${name}`, async () => {
      await compare(name, (m) => rangesOps(m));
    });
    test(`TokenSelect with selection reuse: ${name}`, async () => {
      await compare(name, (m) => selectOps(m));
    });
  }
  for (const name of ['qwen2 beacon v3', 'llama beacon v1 (q/k/v/o)']) {
    test(`interleaved and all-beacon rows: ${name}`, async () => {
      await compare(name, (m) => beaconOps(m));
    });
  }

  test('every strategy through a Session gives the reference logits', async () => {
    const cases: Array<[string, StrategyOptions, number]> = [
      ['qwen2 beacon v3', { strategy: 'beacon' }, 150],
      ['llama beacon v1 (q/k/v/o)', { strategy: 'beacon' }, 90],
      ['qwen2 GQA, head dim 8', { strategy: 'select', nInit: 4, topK: 16, nLocal: 16, chunk: 16 }, 120],
      ['qwen2 GQA, head dim 8', { strategy: 'stream', sink: 4, recent: 40, chunk: 16 }, 120],
      ['llama MHA, head dim 16, tied embeddings', { strategy: 'full', chunk: 32 }, 100],
    ];
    for (const [name, opts, n] of cases) {
      const p = pairs.get(name)!;
      const doc = tokens(n, p.model.config.vocabSize, 77);
      const run = async (backend: Backend) => {
        const session = new Session(backend, resolveStrategy(p.model.config, opts, n + 8));
        const prefill = await session.feed(doc, { allLogits: true });
        const steps: Float32Array[] = [];
        for (let i = 0; i < 4; i++) steps.push(await session.feed(Int32Array.of(5 + i), { decoding: true }));
        const stats = session.stats();
        session.dispose();
        return { prefill, steps, stats };
      };
      const [a, b] = [await run(p.ref), await run(p.host)];
      const d = Math.max(maxAbsDiff(a.prefill, b.prefill), ...a.steps.map((s, i) => maxAbsDiff(s, b.steps[i])));
      assert.ok(d <= TOL, `${name} ${opts.strategy}: max |Δlogit| ${d.toExponential(2)}`);
      assert.deepEqual(b.stats, a.stats, `${name} ${opts.strategy}: memory stats differ`);
    }
  });

  test('KV bytes, lengths and numeric mode', async () => {
    const p = pairs.get('qwen2 GQA, head dim 8')!;
    const c = p.model.config;
    assert.equal(p.host.kvBytesPerRow, 2 * c.numLayers * c.numKvHeads * c.headDim * 4);
    assert.equal(p.host.numeric, 'f32');
    assert.equal(p.host.name, 'cuda');
    const seq = p.host.newSequence();
    await seq.step({ tokens: tokens(6, c.vocabSize), positions: range(0, 6), mask: { kind: 'causal' }, logitRows: Int32Array.of(5), rope: ropeOf(p.model) });
    assert.equal(seq.length, 6);
    assert.equal(seq.kvBytes(), 6 * p.host.kvBytesPerRow);
    seq.retain(Int32Array.of(4, 0));
    assert.equal(seq.length, 2);
    const snap = seq.snapshot();
    assert.equal(snap.rows, 2);
    assert.equal(snap.kvDtype, 'f32');
    assert.equal(snap.keys[0].length, c.numKvHeads);
    assert.equal(snap.keys[0][0].length, 2 * c.headDim);
    seq.dispose();
  });

  test('malformed requests are refused with the field named', async () => {
    const p = pairs.get('qwen2 GQA, head dim 8')!;
    const c = p.model.config;
    const seq = p.host.newSequence();
    const base = { positions: range(0, 2), mask: { kind: 'causal' as const }, logitRows: Int32Array.of(1), rope: ropeOf(p.model) };
    await assert.rejects(seq.step({ ...base, tokens: Int32Array.of(1, c.vocabSize) }), /token id 320 is outside the vocabulary/);
    await assert.rejects(seq.step({ ...base, tokens: Int32Array.of(1, 2), logitRows: Int32Array.of(2) }), /logit row 2/);
    await assert.rejects(
      seq.step({ ...base, tokens: Int32Array.of(1, 2), beacon: Uint8Array.of(0, 1) }),
      /beacon rows need a beacon checkpoint/,
    );
    await assert.rejects(
      seq.step({ ...base, tokens: Int32Array.of(1, 2), mask: { kind: 'ranges', ranges: new Int32Array(12) } }),
      /sees no key/,
    );
    assert.equal(seq.length, 0, 'a refused step stores nothing');
    assert.throws(() => seq.retain(Int32Array.of(0)), /outside the stored rows/);
    seq.dispose();
  });
});

describe('native backend: random weights generated by the kernels (benchmarks)', { skip }, () => {
  test('a sparse model folder loads with randomWeightsSeed, deterministically per seed', async () => {
    const { writeSparseModel } = await import('../../../bench/cuda/make-model.mjs');
    const dir = mkdtempSync(join(tmpdir(), 'ctx-cuda-sparse-'));
    try {
      writeSparseModel(dir, { vocab: 3000, hidden: 64, intermediate: 128, layers: 2, heads: 4, kvHeads: 2, maxPositions: 4096, ropeTheta: 1e6 });
      const model = openModel(dir);
      const req = { tokens: tokens(20, 3000), positions: range(0, 20), mask: { kind: 'causal' as const }, logitRows: Int32Array.of(19), rope: ropeOf(model) };
      const logitsFor = async (seed: number) => {
        const b = await createNativeBackend(model, { device: 'host', randomWeightsSeed: seed });
        const seq = b.newSequence();
        const { logits } = await seq.step(req);
        seq.dispose();
        await b.dispose();
        return logits;
      };
      const [a, b, c] = [await logitsFor(1), await logitsFor(1), await logitsFor(2)];
      assert.ok(a.every(Number.isFinite));
      assert.equal(maxAbsDiff(a, b), 0);
      assert.ok(maxAbsDiff(a, c) > 1e-3, 'another seed gives other weights');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('native backend device probe', { skip }, () => {
  test('without a usable GPU it says why, and --backend cuda refuses with that reason', async () => {
    const probe = probeDevices();
    if (probe.available) return; // a GPU machine: gpu.test.ts covers it
    assert.equal(typeof probe.reason, 'string');
    assert.ok(probe.reason!.length > 10, probe.reason);
    const m = tempModel({ ...PRESETS.tiny, seed: 1 });
    try {
      await assert.rejects(createNativeBackend(m.model), (e: unknown) => e instanceof CtxError && /^no GPU: /.test(e.message));
    } finally {
      m.cleanup();
    }
  });
});

const goldenCases = existsSync(GOLDEN_ROOT) ? findGoldenCases(GOLDEN_ROOT) : [];
const goldenSkip = skip || (goldenCases.length === 0 ? `no golden cases at ${GOLDEN_ROOT}` : false);

describe('native backend on the host kernels: golden cases', { skip: goldenSkip }, () => {
  for (const dir of goldenCases) {
    test(dir.split('/').pop()!, async () => {
      const r = await replayGolden(dir, (m) => createNativeBackend(m, { device: 'host' }));
      assert.ok(r.greedyEqual, `${r.name}: greedy ids differ`);
      assert.ok(r.maxDiff <= r.atol, `${r.name}: max |Δlogit| ${r.maxDiff.toExponential(2)} > ${r.atol}`);
    });
  }
});

describe('native backend: softplus-attention models are refused', () => {
  // Needs no addon: the refusal comes before anything is loaded, on every device.
  test('naming the model folder and the reason (exit 2), on the host kernels and the GPU', async () => {
    const m = tempModel({ ...PRESETS.tiny, seed: 2, softplus: { scale: 'log_head_dim_x_log_n', reweight: { p: 15, offset: 1, noOffsetFirstRows: 3 } } });
    try {
      for (const device of ['host', 'cuda'] as const) {
        await assert.rejects(
          createNativeBackend(m.model, { device }),
          (e: unknown) =>
            e instanceof CtxError && e.exitCode === 2 &&
            e.message === `${m.model.dir}: softplus attention (LSSAR p=15) is not supported by the cuda backend (its kernels compute softmax attention only); use --backend cpu`,
        );
      }
    } finally {
      m.cleanup();
    }
  });
});
