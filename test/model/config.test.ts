// config.json → ModelConfig through the one architecture table; beacon v1/v3 detection; the
// tensors a model needs, with beacon projections falling back to the base ones as in the reference.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseModelConfig } from '../../src/model/config.js';
import { openModel } from '../../src/model/model.js';
import { writeSafetensors } from '../../src/model/safetensors-write.js';
import { SafetensorsFile, toFloat32 } from '../../src/model/safetensors.js';
import { PRESETS, writeRandomModel } from '../../tools/random-model.js';

const base = { vocab_size: 10, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 64 };

describe('model config', () => {
  it('maps model types and class names through one table', () => {
    assert.equal(parseModelConfig({ ...base, model_type: 'qwen2' }).qkvBias, true);
    assert.equal(parseModelConfig({ ...base, architectures: ['MistralForCausalLM'] }).arch, 'mistral');
    assert.equal(parseModelConfig({ ...base, model_type: 'llama', attention_bias: true }).qkvBias, true);
    assert.throws(() => parseModelConfig({ ...base, model_type: 'gpt2' }), /unsupported architecture "gpt2"/);
  });
  it('reads GQA, head_dim, tied embeddings, eos lists and rope_scaling', () => {
    const c = parseModelConfig({
      ...base, model_type: 'llama', num_key_value_heads: 1, head_dim: 6, tie_word_embeddings: true, eos_token_id: [2, 7],
      rope_scaling: { rope_type: 'yarn', factor: 4, original_max_position_embeddings: 32 },
    });
    assert.deepEqual([c.numKvHeads, c.headDim, c.tieWordEmbeddings, c.eosTokenIds], [1, 6, true, [2, 7]]);
    assert.deepEqual(c.ropeScaling, { type: 'yarn', factor: 4, originalMaxPositions: 32, betaFast: 32, betaSlow: 1, attentionFactor: undefined });
  });
  it('refuses configs that cannot run, naming the key', () => {
    assert.throws(() => parseModelConfig({ ...base, model_type: 'llama', num_key_value_heads: 3 }), /not a multiple of num_key_value_heads 3/);
    assert.throws(() => parseModelConfig({ ...base, model_type: 'llama', hidden_act: 'gelu' }), /unsupported hidden_act "gelu"/);
    assert.throws(() => parseModelConfig({ ...base, model_type: 'llama', hidden_size: 'big' }), /"hidden_size" is not a number/);
  });
  it('tells the beacon recipes apart: v3 has beacon_pos, v1 a stride list', () => {
    const v3 = parseModelConfig({ ...base, model_type: 'qwen2', beacon_window: 32, beacon_stride: 32, beacon_pos: 'interleave', beacon_ratio: [2, 4] });
    assert.deepEqual([v3.beacon?.version, v3.beacon?.pos, v3.beacon?.ratioMix], ['v3', 'interleave', 'adapt-1024']);
    const v1 = parseModelConfig({ ...base, model_type: 'llama', beacon_window: 32, beacon_stride: [16], beacon_ratio: [4], beacon_attend_previous: false });
    assert.deepEqual([v1.beacon?.version, v1.beacon?.stride, v1.beacon?.attendPrev, v1.beacon?.attn], ['v1', 16, false, 'step-expansion']);
    assert.throws(() => parseModelConfig({ ...base, model_type: 'qwen2', beacon_window: 32, beacon_stride: 32, beacon_pos: 'interleave', beacon_ratio: [3] }), /must divide/);
  });
});

describe('opening a model folder', () => {
  it('beacon projections missing from the checkpoint fall back to the base ones', () => {
    const d = mkdtempSync(join(tmpdir(), 'ctx-fallback-'));
    writeRandomModel(d, PRESETS['tiny-beacon']);
    const f = SafetensorsFile.open(join(d, 'model.safetensors'));
    const keep = [...f.tensors.values()].filter((t) => !t.name.includes('beacon_k_proj'));
    writeSafetensors(join(d, 'model.safetensors'), keep.map((t) => ({ name: t.name, shape: t.shape, data: toFloat32(t, f.readBytes(t.name)) })));
    const m = openModel(d);
    const t = m.tensors.layers[0];
    assert.equal(t.beaconK.tensors.weight.name, 'model.layers.0.self_attn.k_proj.weight');
    assert.equal(t.beaconQ.tensors.weight.name, 'model.layers.0.self_attn.beacon_q_proj.weight');
    assert.equal(t.beaconO.tensors.weight.name, 'model.layers.0.self_attn.o_proj.weight', 'v3 has no beacon_o: base o_proj');
  });
  it('a tensor with the wrong shape or a missing one is a model error naming it', () => {
    const d = mkdtempSync(join(tmpdir(), 'ctx-badshape-'));
    writeRandomModel(d, PRESETS.tiny);
    writeFileSync(join(d, 'config.json'), JSON.stringify({ model_type: 'qwen2', vocab_size: 320, hidden_size: 32, intermediate_size: 65, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128 }));
    assert.throws(() => openModel(d), /tensor "model\.layers\.0\.mlp\.gate_proj\.weight" has shape \[64,32\] but config\.json implies \[65,32\]/);
    writeFileSync(join(d, 'config.json'), JSON.stringify({ model_type: 'qwen2', vocab_size: 320, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 3, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 128 }));
    assert.throws(() => openModel(d), /weights lack tensor "model\.layers\.2\.self_attn\.q_proj\.weight"/);
  });
  it('a folder without weights says so', () => {
    const d = mkdtempSync(join(tmpdir(), 'ctx-noweights-'));
    writeFileSync(join(d, 'config.json'), JSON.stringify({ ...base, model_type: 'llama' }));
    assert.throws(() => openModel(d), /no model.safetensors or model.safetensors.index.json/);
  });
});
