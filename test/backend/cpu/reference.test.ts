// The cpu backend against the reference backend (the oracle) on tiny random models: every
// strategy through the engine, then the contract's corners step by step.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Backend, RopeTable, StepRequest } from '../../../src/backend/contract.js';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { baseInvFreq } from '../../../src/engine/rope.js';
import { openModel } from '../../../src/model/model.js';
import { scratchDir } from '../../helpers/fixtures.js';
import { tinyModel, tokens } from '../../helpers/models.js';
import { createReferenceBackend } from '../../../src/backend/reference/index.js';
import { layerAsFloat32 } from '../../../src/backend/step/snapshot.js';
import { bothBackends, cpuBackend, maxAbsDiff, runDiff, runStrategy } from './helpers.js';

const TOL = 1e-4;
const PHI = join(import.meta.dirname, '..', '..', '..', 'fixtures', 'golden-phi', 'models', 'phi2-tiny');
const range = (a: number, n: number) => Int32Array.from({ length: n }, (_, i) => a + i);

const disposers: Backend[] = [];
after(async () => {
  for (const b of disposers) await b.dispose();
});
async function pair(preset: string, overrides = {}) {
  const model = tinyModel(preset, overrides);
  const b = await bothBackends(model);
  disposers.push(b.ref, b.cpu);
  return { model, ...b };
}

describe('cpu vs reference: strategies', () => {
  const cases: Array<[string, string, object, object, number, number, number?]> = [
    // name, preset, model overrides, strategy options, document length, decode steps, feed size
    ['full, 64-token chunks', 'tiny', { maxPositions: 512 }, { strategy: 'full', chunk: 64 }, 300, 12],
    ['full, document in 3 calls', 'tiny', { maxPositions: 512, seed: 5 }, { strategy: 'full', chunk: 48 }, 200, 6, 70],
    ['full with YaRN scaling (cos/sin scale)', 'tiny', { maxPositions: 128 }, { strategy: 'full', chunk: 64, rope: { type: 'yarn', factor: 4 } }, 400, 6],
    ['full with dynamic NTK (table changes per step)', 'tiny', { maxPositions: 128 }, { strategy: 'full', chunk: 40, rope: { type: 'dynamic', factor: 4 } }, 300, 6],
    ['stream (sink 4 + recent 60)', 'tiny', {}, { strategy: 'stream', sink: 4, recent: 60, chunk: 24 }, 300, 10],
    ['select (no reuse)', 'tiny', { maxPositions: 256 }, { strategy: 'select', nInit: 8, topK: 24, nLocal: 16, chunk: 16, reuseCosine: null }, 300, 10],
    ['select with selection reuse (θ = 0.5)', 'tiny', { maxPositions: 256, seed: 9 }, { strategy: 'select', nInit: 4, topK: 32, nLocal: 16, chunk: 16, reuseCosine: 0.5 }, 260, 16],
    ['beacon v3 interleave (adapt)', 'tiny-beacon', {}, { strategy: 'beacon' }, 400, 12],
    ['beacon v3 with sink 1, fed in 2 calls', 'tiny-beacon', { beacon: { version: 'v3', window: 16, ratios: [2], sinkSize: 1 } }, { strategy: 'beacon' }, 150, 8, 75],
    ['beacon v1 append step-expansion', 'tiny-beacon-v1', {}, { strategy: 'beacon' }, 300, 12],
    ['beacon v1 segmentation', 'tiny-beacon-v1', { beacon: { version: 'v1', window: 32, stride: 32, ratios: [8], attn: 'segmentation' } }, { strategy: 'beacon' }, 200, 8],
    // Steps longer than ROW_CHUNK (512): the weight graphs run on row chunks.
    ['full, 1100-row steps', 'tiny', { maxPositions: 2048 }, { strategy: 'full', chunk: 1100 }, 1300, 4],
    ['beacon v3, 1152-row windows', 'tiny-beacon', { maxPositions: 4096, beacon: { version: 'v3', window: 1024, ratios: [8] } }, { strategy: 'beacon' }, 2200, 4],
    ['beacon v1 full-coverage', 'tiny-beacon-v1', { beacon: { version: 'v1', window: 32, stride: 16, ratios: [4], attn: 'full-coverage' } }, { strategy: 'beacon' }, 200, 8],
    // FocusLLM with random beacon_{q,k,v,o} candidate projections: 12 chunks; a prompt in 3 calls
    // (plain attention, then chunked, then re-planned keeping the chunks); below its threshold.
    ['focus (FocusLLM), 12 chunks', 'tiny-focus', {}, { strategy: 'focus' }, 300, 10],
    ['focus, prompt in 3 calls', 'tiny-focus', { seed: 4 }, { strategy: 'focus' }, 250, 6, 90],
    ['focus below its threshold (plain attention)', 'tiny-focus', { seed: 6 }, { strategy: 'focus' }, 80, 8],
    // CLEX (window 64): t = 3 while reading 190 tokens in 40-token chunks, 4 from the third decode
    // step on, when every stored key (and the cpu's rotated-key cache) is re-rotated.
    ['full with CLEX: t 3, then 4 while decoding', 'tiny-clex', {}, { strategy: 'full', chunk: 40 }, 190, 6],
    ['full with CLEX log_scale, document in 3 calls (t per call)', 'tiny-clex', { clex: { maxFactor: 8, logScale: true } }, { strategy: 'full', chunk: 32 }, 200, 6, 70],
    ['select on CLEX log_scale (ranks within the window: t = 1)', 'tiny-clex', { clex: { maxFactor: 8, logScale: true } }, { strategy: 'select', nInit: 4, topK: 16, nLocal: 16, chunk: 16, reuseCosine: null }, 200, 6],
    ['stream on CLEX log_scale', 'tiny-clex', { clex: { maxFactor: 8, logScale: true } }, { strategy: 'stream', sink: 4, recent: 56, chunk: 24 }, 200, 6],
  ];
  for (const [name, preset, overrides, opts, n, decode, feed] of cases) {
    it(name, async () => {
      const { model, ref, cpu } = await pair(preset, overrides);
      const doc = tokens(n, 3, 3, model.config.vocabSize);
      const a = await runStrategy(ref, opts, doc, decode, feed);
      const b = await runStrategy(cpu, opts, doc, decode, feed);
      const d = runDiff(a, b);
      assert.ok(d <= TOL, `max |Δlogit| ${d}`);
      assert.deepEqual(b.greedy, a.greedy);
      assert.deepEqual(b.stats, a.stats);
    });
  }
});

describe('cpu vs reference: Phi-2 (partial rotary, LayerNorm, GELU, parallel blocks)', () => {
  const cases: Array<[string, object, number, number, number?]> = [
    ['full, 48-token chunks, document in 2 calls', { strategy: 'full', chunk: 48 }, 200, 6, 120],
    ['stream (sink 4 + recent 60)', { strategy: 'stream', sink: 4, recent: 60, chunk: 24 }, 200, 6],
    ['select with reuse', { strategy: 'select', nInit: 4, topK: 24, nLocal: 16, chunk: 16, reuseCosine: 0.5 }, 200, 8],
  ];
  for (const [name, opts, n, decode, feed] of cases) {
    it(name, async () => {
      const model = openModel(PHI);
      const { ref, cpu } = await bothBackends(model);
      disposers.push(ref, cpu);
      const doc = tokens(n, 4, 3, model.config.vocabSize);
      const a = await runStrategy(ref, opts, doc, decode, feed);
      const b = await runStrategy(cpu, opts, doc, decode, feed);
      const d = runDiff(a, b);
      assert.ok(d <= TOL, `max |Δlogit| ${d}`);
      assert.deepEqual(b.greedy, a.greedy);
    });
  }
});

// A model's own YaRN scaling multiplies cos and sin by its attention factor (1.14 at factor 4): a
// head's 8 dims past its 8 rotary ones stay as stored, in the keys select gathers (keys.ts) too.
describe('cpu vs reference: Phi-2 with YaRN in its config (partial rotary, scaled cos/sin)', () => {
  it('select', async () => {
    const dir = scratchDir('phi2-yarn');
    const config = JSON.parse(readFileSync(join(PHI, 'config.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, rope_scaling: { type: 'yarn', factor: 4, original_max_position_embeddings: 64 } }));
    symlinkSync(join(PHI, 'model.safetensors'), join(dir, 'model.safetensors'));
    const model = openModel(dir);
    const { ref, cpu } = await bothBackends(model);
    disposers.push(ref, cpu);
    const doc = tokens(200, 4, 3, model.config.vocabSize);
    const opts = { strategy: 'select', nInit: 4, topK: 24, nLocal: 16, chunk: 16, reuseCosine: null } as const;
    const a = await runStrategy(ref, opts, doc, 6);
    const b = await runStrategy(cpu, opts, doc, 6);
    const d = runDiff(a, b);
    assert.ok(d <= TOL, `max |Δlogit| ${d}`);
    assert.deepEqual(b.greedy, a.greedy);
  });
});

// f16 KV (the cpu default): every stored key and value rounded to half precision, so the logits
// follow the reference to about 1e-2, not float32 rounding (the goldens, golden.test.ts, say how far).
describe('cpu with f16 KV vs reference', () => {
  const F16_TOL = 0.1; // measured: 2.0e-2 … 4.0e-2 on these cases
  const cases: Array<[string, string, object, object, number, number]> = [
    ['full', 'tiny', { maxPositions: 512 }, { strategy: 'full', chunk: 64 }, 300, 8],
    ['stream (retain moves rows)', 'tiny', {}, { strategy: 'stream', sink: 4, recent: 60, chunk: 24 }, 300, 8],
    ['select with selection reuse', 'tiny', { maxPositions: 256, seed: 9 }, { strategy: 'select', nInit: 4, topK: 32, nLocal: 16, chunk: 16, reuseCosine: 0.5 }, 260, 8],
    ['beacon v3 interleave', 'tiny-beacon', {}, { strategy: 'beacon' }, 400, 8],
    ['beacon v1 full-coverage (ranges masks)', 'tiny-beacon-v1', { beacon: { version: 'v1', window: 32, stride: 16, ratios: [4], attn: 'full-coverage' } }, { strategy: 'beacon' }, 200, 8],
    // Softplus attention reads unit-length rotated keys: the f16 rotated-key cache and the gather graph
    // keep them so. (With f16 keys the vote can also pick another key at a near-tie: under LSSAR p=3
    // one such chunk of this document moved logits by 1.6, which is the re-weighting's sensitivity.)
    ['full, softplus LSSA', 'tiny', { maxPositions: 512, softplus: { scale: 'log_head_dim_x_log_n', reweight: null } }, { strategy: 'full', chunk: 64 }, 300, 8],
    ['select, softplus LSSA', 'tiny', { maxPositions: 256, softplus: { scale: 'log_head_dim_x_log_n', reweight: null } }, { strategy: 'select', nInit: 8, topK: 24, nLocal: 16, chunk: 16, reuseCosine: null }, 300, 8],
  ];
  for (const [name, preset, overrides, opts, n, decode] of cases) {
    it(name, async (t) => {
      const model = tinyModel(preset, overrides);
      const ref = await createReferenceBackend(model);
      const cpu = await cpuBackend(model, 'f32', 'f16');
      disposers.push(ref, cpu);
      assert.equal(cpu.numeric, 'f32 kv-f16');
      assert.equal(cpu.kvBytesPerRow * 2, ref.kvBytesPerRow);
      const doc = tokens(n, 3, 3, model.config.vocabSize);
      const a = await runStrategy(ref, opts, doc, decode);
      const b = await runStrategy(cpu, opts, doc, decode);
      const d = runDiff(a, b);
      t.diagnostic(`max |Δlogit| ${d.toExponential(2)}`);
      assert.ok(d <= F16_TOL, `max |Δlogit| ${d}`);
      assert.deepEqual(b.greedy, a.greedy);
      assert.equal(b.stats.kvBytes * 2, a.stats.kvBytes);
    });
  }
});

describe('cpu vs reference: contract corners', () => {
  const rope = (model: { config: { headDim: number; ropeTheta: number } }, scale = 1): RopeTable => ({
    invFreq: baseInvFreq(model.config.headDim, model.config.ropeTheta),
    scale,
  });

  it('ranges masks, beacon rows, arbitrary positions, unordered retain, snapshot and restore', async () => {
    const { model, ref, cpu } = await pair('tiny-beacon-v1');
    const V = model.config.vocabSize;
    const r = rope(model);
    // Step 1: 10 raw rows (causal) + 3 beacon rows with hand-made ranges and positions.
    const n = 13;
    const ranges = new Int32Array(6 * n);
    for (let i = 0; i < 10; i++) ranges.set([0, i + 1], 6 * i);
    ranges.set([0, 4, 10, 11, 0, 0], 60); // beacon 1: raw 0..3 and itself
    ranges.set([2, 8, 11, 12, 0, 0], 66); // beacon 2: raw 2..7 and itself
    ranges.set([0, 10, 12, 13, 0, 0], 72); // beacon 3: every raw row and itself
    const flags = new Uint8Array(n).fill(1, 10);
    const step1: StepRequest = {
      tokens: tokens(n, 5, 3, V), beacon: flags, positions: Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 4, 8, 10]),
      mask: { kind: 'ranges', ranges }, logitRows: range(0, 10), rope: r,
    };
    const step2 = (M: number): StepRequest => ({
      tokens: tokens(5, 6, 3, V), positions: range(M, 5), mask: { kind: 'causal' }, logitRows: range(0, 5), rope: r,
    });
    const run = async (b: Backend) => {
      const seq = b.newSequence();
      const out: Float32Array[] = [(await seq.step(step1)).logits];
      seq.retain(Int32Array.from([10, 11, 12, 7, 8, 9, 0])); // beacons first, then some raw rows: not ascending
      out.push((await seq.step(step2(7))).logits);
      const snap = seq.snapshot();
      const again = b.newSequence();
      again.restore(snap);
      out.push((await again.step(step2(12))).logits);
      out.push((await seq.step(step2(12))).logits);
      return { out, snap };
    };
    const a = await run(ref);
    const c = await run(cpu);
    for (let k = 0; k < a.out.length; k++) assert.ok(maxAbsDiff(a.out[k], c.out[k]) <= TOL, `output ${k}: ${maxAbsDiff(a.out[k], c.out[k])}`);
    assert.deepEqual(c.out[2], c.out[3], 'a restored sequence continues exactly like the original');
    assert.equal(c.snap.rows, 12);
    const D = model.config.headDim;
    for (let l = 0; l < a.snap.keys.length; l++) {
      assert.ok(maxAbsDiff(layerAsFloat32(a.snap.keys[l], 12, D), layerAsFloat32(c.snap.keys[l], 12, D)) <= TOL, `snapshot keys of layer ${l}`);
      assert.ok(maxAbsDiff(layerAsFloat32(a.snap.values[l], 12, D), layerAsFloat32(c.snap.values[l], 12, D)) <= TOL, `snapshot values of layer ${l}`);
    }
  });

  it('a snapshot taken on the reference continues identically on cpu', async () => {
    const { model, ref, cpu } = await pair('tiny', { maxPositions: 256 });
    const r = rope(model);
    const V = model.config.vocabSize;
    const spec = { nInit: 4, topK: 12, nLocal: 8, reuseCosine: 0.3 };
    const doc = tokens(96, 8, 3, V);
    const seq = ref.newSequence();
    for (let s = 0; s < doc.length; s += 8) {
      await seq.step({ tokens: doc.subarray(s, s + 8), positions: range(s, 8), mask: { kind: 'causal' }, select: spec, logitRows: new Int32Array(0), rope: r });
    }
    const snap = seq.snapshot();
    const next: StepRequest = { tokens: Int32Array.of(17), positions: Int32Array.of(96), mask: { kind: 'causal' }, select: spec, logitRows: Int32Array.of(0), rope: r, reportSelection: true };
    const onCpu = cpu.newSequence();
    onCpu.restore(snap);
    const a = await seq.step(next);
    const b = await onCpu.step(next);
    assert.ok(maxAbsDiff(a.logits, b.logits) <= TOL, `${maxAbsDiff(a.logits, b.logits)}`);
    assert.deepEqual(b.selection, a.selection);
  });

  it('reports the same per-layer selections as the reference', async () => {
    const { model, ref, cpu } = await pair('tiny', { maxPositions: 256, layers: 3, seed: 4 });
    const r = rope(model);
    const spec = { nInit: 4, topK: 20, nLocal: 16, reuseCosine: null };
    const doc = tokens(192, 12, 3, model.config.vocabSize);
    const run = async (b: Backend) => {
      const seq = b.newSequence();
      const sel: Int32Array[][] = [];
      for (let s = 0; s < doc.length; s += 16) {
        const res = await seq.step({ tokens: doc.subarray(s, s + 16), positions: range(s, 16), mask: { kind: 'causal' }, select: spec, logitRows: Int32Array.of(15), rope: r, reportSelection: true });
        sel.push(res.selection!);
      }
      return sel;
    };
    assert.deepEqual(await run(cpu), await run(ref));
  });
});
