// The cpu backend on GGUF files: every type ctx reads, and a Q4_K_M-style file that mixes Q4_K and
// Q6_K, against the reference backend (which dequantizes the file to float32, the oracle). What is
// checked beyond agreement: the weights are kept as the file stores them (the codes in weights.bin
// are the file's blocks re-encoded, byte for byte; nothing is quantized again), projections of
// different types are stored as separate row blocks, and embedding rows are the file's exact values.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { Backend } from '../../../src/backend/contract.js';
import { createCpuBackend, type CpuBackend } from '../../../src/backend/cpu/index.js';
import { convertedWeights, storedLinear } from '../../../src/backend/cpu/weights.js';
import { createReferenceBackend } from '../../../src/backend/reference/index.js';
import { CtxError } from '../../../src/errors.js';
import { isQuantType } from '../../../src/model/gguf/blocks.js';
import { SUPPORTED_TYPE_NAMES, type SupportedType } from '../../../src/model/gguf/ggml-types.js';
import { toMatMulNBits } from '../../../src/model/gguf/matmul-nbits.js';
import { ggufWeights, openGgufModel, type Model } from '../../../src/model/model.js';
import { Session } from '../../../src/engine/session.js';
import { resolveStrategy, type StrategyOptions } from '../../../src/engine/strategies/index.js';
import { tokens } from '../../helpers/models.js';
import { scratchPath, wideModel, writeFixture } from '../../model/gguf/helpers.js';
import { argmaxRows, maxAbsDiff, runDiff, runStrategy, testCacheDir } from './helpers.js';

const disposers: Backend[] = [];
after(async () => {
  for (const b of disposers) await b.dispose();
});

async function backends(model: Model, nbitsAccuracy: 1 | 4 = 4): Promise<{ ref: Backend; cpu: CpuBackend }> {
  const ref = await createReferenceBackend(model);
  // f32 KV: these cases compare with the reference exactly (f16 KV, the default, rounds keys and values).
  const cpu = (await createCpuBackend(model, { cacheDir: testCacheDir(), threads: 2, nbitsAccuracy, kvDtype: 'f32' })) as CpuBackend;
  disposers.push(ref, cpu);
  return { ref, cpu };
}

/**
 * Logits of every document row, then of each token of `continuation` fed one by one: both backends
 * are fed the same tokens (the reference's greedy continuation), so a near-tie that one backend
 * breaks the other way does not send the two down different texts.
 */
async function forced(backend: Backend, opts: StrategyOptions, doc: Int32Array, continuation: number[]): Promise<Float32Array[]> {
  const session = new Session(backend, resolveStrategy(backend.model.config, opts, doc.length + continuation.length));
  const out = [await session.feed(doc, { allLogits: true })];
  for (const t of continuation) out.push(await session.feed(Int32Array.of(t), { decoding: true }));
  session.dispose();
  return out;
}

/** Largest |Δlogit| between two forced runs. */
const runMax = (a: Float32Array[], b: Float32Array[]) => Math.max(...a.map((x, i) => maxAbsDiff(x, b[i])));

/** Largest |logit| of a run. */
const runScale = (a: Float32Array[]) => Math.max(...a.map((x) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0)));

/**
 * Largest |Δlogit| allowed against the reference.
 *  - exact: MatMulNBits with float32 activations (accuracy_level 1) multiplies by exactly the
 *    file's dequantized weights, so every type agrees to float32 rounding (the quality bar's 1e-3);
 *  - the default int8 activations (accuracy_level 4, as llama.cpp quantizes activations for its own
 *    quantized products) cost about 1% of each product, which through these two-layer models is
 *    measured at 2.9% (Q6_K) to 4.0% (Q8_0) of the run's largest |logit| (about 10): the bound is
 *    relative to that.
 */
const EXACT_TOL = 1e-3;
const INT8_REL = 0.06;

/** The Q4_K_M recipe's choice of types, as llama.cpp's quantizer makes it for small models. */
function q4km(name: string, shape: number[]): SupportedType {
  if (shape.length !== 2) return 'F32';
  if (/embed_tokens|lm_head|v_proj|down_proj/.test(name)) return 'Q6_K';
  return 'Q4_K';
}

const FULL: StrategyOptions = { strategy: 'full', chunk: 16 };

describe('cpu backend on GGUF files', () => {
  for (const type of SUPPORTED_TYPE_NAMES) {
    it(`${type}: the reference's logits${isQuantType(type) ? ' exactly with float32 activations, closely with int8 ones' : ''}`, async () => {
      const model = await openGgufModel(writeFixture(wideModel('qwen2', { seed: 3 }), type));
      const doc = tokens(48, 5, 3, model.config.vocabSize);
      const exact = await backends(model, 1);
      assert.equal(exact.cpu.numeric, 'gguf');
      const want = await runStrategy(exact.ref, FULL, doc, 6);
      const ref = await forced(exact.ref, FULL, doc, want.greedy.slice(0, 6));
      const d1 = runMax(ref, await forced(exact.cpu, FULL, doc, want.greedy.slice(0, 6)));
      assert.ok(d1 <= EXACT_TOL, `float32 activations: max |Δlogit| ${d1}`);
      if (!isQuantType(type)) return;

      const { cpu } = await backends(model, 4);
      const got = await forced(cpu, FULL, doc, want.greedy.slice(0, 6));
      const d4 = runMax(ref, got);
      assert.ok(d4 <= INT8_REL * runScale(ref), `int8 activations: max |Δlogit| ${d4} of ${runScale(ref)}`);
      // Greedy choices agree wherever the reference's top two are further apart than that.
      const V = model.config.vocabSize;
      const all = (x: Float32Array[]) => Float32Array.from(x.flatMap((a) => Array.from(a)));
      const r = all(ref);
      const c = argmaxRows(all(got), V);
      argmaxRows(r, V).forEach((t, i) => {
        const row = r.subarray(i * V, (i + 1) * V);
        const second = Math.max(...Array.from(row).filter((_, j) => j !== t));
        if (row[t] - second > 2 * d4) assert.equal(c[i], t, `row ${i}`);
      });
    });
  }

  it('Q4_K_M (Q4_K + Q6_K, llama, untied head): kept as stored, q/k/v in two row blocks, embeddings exact', async () => {
    const base = wideModel('llama', { seed: 4 });
    const model = await openGgufModel(writeFixture(base, 'Q4_K', { typeOf: q4km }));
    const { ref, cpu } = await backends(model);
    const gguf = ggufWeights(model)!;
    const { dir, layout } = await convertedWeights(model, 'gguf', testCacheDir());
    const bin = readFileSync(join(dir, layout.file));

    // q and k are Q4_K, v is Q6_K: one MatMulNBits for q+k, one for v, concatenated.
    const qkv = storedLinear(layout, '0.qkv');
    assert.equal(qkv.kind, 'parts');
    assert.deepEqual(qkv.kind === 'parts' && qkv.parts, ['0.qkv.0', '0.qkv.1']);
    assert.deepEqual(layout.nbits?.['0.qkv.0'], { bits: 4, blockSize: 32, zeroPoints: true, mins: true });
    assert.deepEqual(layout.nbits?.['0.qkv.1'], { bits: 8, blockSize: 16, zeroPoints: false, mins: false });
    assert.deepEqual(layout.nbits?.['0.down'], { bits: 8, blockSize: 16, zeroPoints: false, mins: false });
    assert.deepEqual(layout.nbits?.lmHead, { bits: 8, blockSize: 16, zeroPoints: false, mins: false });

    // No second quantization: the stored codes, scales and mins are the file's blocks re-encoded.
    const slice = (name: string) => {
      const t = layout.tensors[name];
      return bin.subarray(t.offset, t.offset + t.length);
    };
    const H = model.config.hiddenSize;
    const qRows = model.config.numHeads * model.config.headDim;
    const kRows = model.config.numKvHeads * model.config.headDim;
    const q = gguf.rawRows('model.layers.0.self_attn.q_proj.weight', 0, qRows);
    const k = gguf.rawRows('model.layers.0.self_attn.k_proj.weight', 0, kRows);
    const qk = toMatMulNBits('Q4_K', Buffer.concat([q.bytes, k.bytes]), qRows + kRows, H);
    assert.ok(slice('0.qkv.0.q').equals(qk.b));
    assert.ok(slice('0.qkv.0.scales').equals(Buffer.from(qk.scales.buffer)));
    assert.ok(slice('0.qkv.0.mins').equals(Buffer.from(qk.mins!.buffer)));
    assert.ok(slice('0.qkv.0.zp').equals(qk.zeroPoints!));
    const down = gguf.rawRows('model.layers.1.mlp.down_proj.weight', 0, H);
    const downNbits = toMatMulNBits('Q6_K', down.bytes, H, model.config.intermediateSize);
    assert.ok(slice('1.down.q').equals(downNbits.b));
    assert.ok(slice('1.down.scales').equals(Buffer.from(downNbits.scales.buffer)));

    // Embedding rows are the file's dequantized rows, bit for bit.
    const ids = [0, 7, 299, 7];
    const rows = new Float32Array(ids.length * H);
    ids.forEach((id, i) => cpu.embedding.row(id, rows, i * H));
    assert.deepEqual(rows, gguf.gatherRows('model.embed_tokens.weight', ids));

    // Int8 activations, dense attention (TokenSelect's choice of keys may differ on a near-tie).
    const doc = tokens(40, 9, 3, model.config.vocabSize);
    const want = await runStrategy(ref, FULL, doc, 8);
    const refRun = await forced(ref, FULL, doc, want.greedy);
    const d = runMax(refRun, await forced(cpu, FULL, doc, want.greedy));
    assert.ok(d <= INT8_REL * runScale(refRun), `int8 activations: max |Δlogit| ${d} of ${runScale(refRun)}`);
    // Float32 activations: TokenSelect as well, with the same selections.
    const exact = await backends(model, 1);
    const select: StrategyOptions = { strategy: 'select', nInit: 4, topK: 16, nLocal: 8, chunk: 8, reuseCosine: null };
    const a = await runStrategy(exact.ref, select, doc, 8);
    const b = await runStrategy(exact.cpu, select, doc, 8);
    assert.ok(runDiff(a, b) <= EXACT_TOL, `float32 activations: max |Δlogit| ${runDiff(a, b)}`);
    assert.deepEqual(b.greedy, a.greedy);
    assert.deepEqual(b.stats, a.stats);
  });

  it('a tied Q6_K embedding is the LM head, re-encoded once', async () => {
    const model = await openGgufModel(writeFixture(wideModel('qwen2', { seed: 6, tie: true }), 'Q4_K', { typeOf: q4km }));
    assert.equal(model.config.tieWordEmbeddings, true);
    const { layout } = await convertedWeights(model, 'gguf', testCacheDir());
    assert.deepEqual(layout.nbits?.lmHead, { bits: 8, blockSize: 16, zeroPoints: false, mins: false });
    assert.equal(layout.tensors.embed, undefined, 'the embedding table is read from the GGUF file, not stored');
    // q, k Q4_K and v Q6_K with biases: each row block keeps its own.
    assert.equal(layout.tensors['0.qkv.0.bias'].dims[0], (model.config.numHeads + model.config.numKvHeads) * model.config.headDim);
    assert.equal(layout.tensors['0.qkv.1.bias'].dims[0], model.config.numKvHeads * model.config.headDim);
  });

  it('refuses --dtype for a GGUF file, naming it', async () => {
    const path = writeFixture(wideModel('qwen2', { seed: 8 }), 'Q8_0');
    const model = await openGgufModel(path);
    await assert.rejects(createCpuBackend(model, { dtype: 'q8', cacheDir: scratchPath('cache') }), (e: unknown) => {
      assert.ok(e instanceof CtxError);
      assert.match(e.message, /--dtype q8 does not apply to a GGUF file/);
      return true;
    });
  });
});
