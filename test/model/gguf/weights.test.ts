// A model written as GGUF reads back as the same model: the config, every tensor under its
// Hugging Face name and shape, values equal to the type's definition applied to the original rows
// (F32 exactly the original), llama q/k rows back in Hugging Face order, and row gathers that
// read only the rows asked for.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { dequantize } from '../../../src/model/gguf/blocks.js';
import { ggufModelConfig } from '../../../src/model/gguf/config.js';
import { GgufFile } from '../../../src/model/gguf/file.js';
import { SUPPORTED_TYPE_NAMES, type SupportedType } from '../../../src/model/gguf/ggml-types.js';
import { llamaRowOrder } from '../../../src/model/gguf/names.js';
import { quantize } from '../../../src/model/gguf/quantize.js';
import { GgufWeights } from '../../../src/model/gguf/weights.js';
import type { ModelWeights } from '../../../src/model/weights.js';
import { wideModel, writeFixture } from './helpers.js';

/** What the GGUF should hold for `name`: each row quantized with `type` and dequantized. */
function expected(weights: ModelWeights, name: string, type: SupportedType): Float32Array {
  const original = weights.float32(name);
  const shape = weights.info(name).shape;
  if (shape.length === 1) return original;
  const stored = quantize(type, original);
  const out = new Float32Array(original.length);
  dequantize(type, stored, 0, original.length, out);
  return out;
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  assert.equal(a.length, b.length, what);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) assert.fail(`${what}: value ${i} is ${a[i]}, expected ${b[i]}`);
}

describe('GGUF model read back', () => {
  for (const arch of ['qwen2', 'llama'] as const) {
    const model = wideModel(arch, { tie: arch === 'qwen2', layers: 1 });
    for (const type of SUPPORTED_TYPE_NAMES) {
      it(`${arch} ${type}: config, names, shapes and every value`, async () => {
        const path = writeFixture(model, type);
        const file = await GgufFile.open(path);
        const config = ggufModelConfig(file);
        const c = model.config;
        for (const key of ['arch', 'vocabSize', 'hiddenSize', 'intermediateSize', 'numLayers', 'numHeads', 'numKvHeads', 'headDim', 'maxPositions', 'tieWordEmbeddings', 'qkvBias', 'ropeScaling'] as const) {
          assert.deepEqual(config[key], c[key], key);
        }
        assert.equal(config.ropeTheta, Math.fround(c.ropeTheta));
        assert.equal(config.rmsNormEps, Math.fround(c.rmsNormEps));
        const w = GgufWeights.fromFile(file, config);
        const want = model.weights.names().filter((n) => !(c.tieWordEmbeddings && n === 'lm_head.weight')).sort();
        assert.deepEqual(w.names().sort(), want);
        for (const name of want) {
          assert.deepEqual(w.info(name).shape, model.weights.info(name).shape, name);
          const isMatrix = model.weights.info(name).shape.length === 2;
          assert.equal(w.info(name).dtype, isMatrix ? type : 'F32', name);
          sameBits(w.float32(name), expected(model.weights, name, isMatrix ? type : 'F32'), `${name} (${type})`);
        }
        // The embedding lookup reads only the rows asked for, and gives what the whole table gives.
        const ids = [5, 0, 299, 5, 17];
        const EMBED = model.tensors.model.embed.tensors.weight.name;
        const table = w.float32(EMBED);
        const rows = w.gatherRows(EMBED, ids);
        ids.forEach((id, k) => sameBits(rows.subarray(k * 256, (k + 1) * 256), table.subarray(id * 256, (id + 1) * 256), `row ${id}`));
        assert.throws(() => w.gatherRows(EMBED, [300]), RangeError);
        assert.throws(() => w.float32(EMBED, [300, 128]), /has shape \[300,256\] but the config implies \[300,128\]/);
      });
    }
  }

  it('llama q/k rows are stored in llama.cpp order and read back in Hugging Face order', async () => {
    const model = wideModel('llama');
    const path = writeFixture(model, 'F32');
    const file = await GgufFile.open(path);
    const w = GgufWeights.fromFile(file, ggufModelConfig(file));
    const q = model.weights.float32('model.layers.0.self_attn.q_proj.weight');
    // File row g of a head holds Hugging Face row j · 32 + i where g = 2i + j (head size 64).
    const stored = new Float32Array(q.length);
    const t = file.tensors.get('blk.0.attn_q.weight')!;
    dequantize('F32', file.readRange(t, 0, t.byteLength), 0, q.length, stored);
    for (const [g, hf] of [[0, 0], [1, 32], [2, 1], [63, 63], [64, 64], [65, 96]]) {
      assert.deepEqual(stored.subarray(g * 256, g * 256 + 256), q.subarray(hf * 256, hf * 256 + 256), `file row ${g}`);
    }
    assert.deepEqual(w.float32('model.layers.0.self_attn.q_proj.weight'), q);
    assert.deepEqual(w.rawRows('model.layers.0.self_attn.k_proj.weight', 10, 3).bytes, Buffer.from(model.weights.float32('model.layers.0.self_attn.k_proj.weight').subarray(10 * 256, 13 * 256).buffer.slice(10 * 1024, 13 * 1024)));
    // The qwen2 converter leaves the rows alone.
    const { hfToGguf, ggufToHf } = llamaRowOrder(8, 2);
    assert.deepEqual([...hfToGguf], [0, 2, 1, 3, 4, 6, 5, 7]);
    for (let r = 0; r < 8; r++) assert.equal(ggufToHf[hfToGguf[r]], r);
  });

  it('llama 3 rope scaling survives as rope_freqs.weight, and a foreign one is refused', async () => {
    const scaling = { type: 'llama3' as const, factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 };
    const model = wideModel('llama', { ropeTheta: 500000 }, scaling);
    const file = await GgufFile.open(writeFixture(model, 'F32'));
    assert.deepEqual(ggufModelConfig(file).ropeScaling, scaling);
    const odd = wideModel('llama', { ropeTheta: 500000 }, { ...scaling, highFreqFactor: 2 });
    const oddFile = await GgufFile.open(writeFixture(odd, 'F32'));
    assert.throws(() => ggufModelConfig(oddFile), /rope_freqs.weight\[\d+\] = .* is not llama 3's scaling/);
  });

  it('yarn and linear rope scaling round-trip through the metadata', async () => {
    for (const scaling of [
      { type: 'linear' as const, factor: 4 },
      { type: 'yarn' as const, factor: 4, originalMaxPositions: 32768, betaFast: 32, betaSlow: 1, attentionFactor: undefined },
    ]) {
      const file = await GgufFile.open(writeFixture(wideModel('qwen2', {}, scaling), 'F32'));
      assert.deepEqual(ggufModelConfig(file).ropeScaling, scaling);
    }
  });

  it('fingerprints differ between files and are stable for one', async () => {
    const model = wideModel('qwen2');
    const a = await GgufWeights.open(writeFixture(model, 'Q8_0'));
    const b = await GgufWeights.open(writeFixture(model, 'Q4_0'));
    assert.equal(await a.fingerprint(), await a.fingerprint());
    assert.notEqual(await a.fingerprint(), await b.fingerprint());
    assert.ok(a.totalBytes() > b.totalBytes());
  });
});
