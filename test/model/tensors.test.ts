// The tensor table (src/model/tensors.ts): what a model's tensors resolve to, fallbacks, and that
// one more row is all a loader needs to know about a new tensor.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CtxError } from '../../src/errors.js';
import type { ClexScaling } from '../../src/model/clex-config.js';
import { openModel } from '../../src/model/model.js';
import { LLAMA_DECODER, distinctTensors, resolveTensors, type ArchTensors } from '../../src/model/tensors.js';
import { tinyModel } from '../helpers/models.js';

describe('the tensor table', () => {
  it('resolves a plain model: biases where the file has them, a tied LM head is the embedding', () => {
    const qwen = tinyModel('tiny').tensors;
    assert.equal(qwen.layers.length, 2);
    assert.equal(qwen.layers[0].q.tensors.bias?.name, 'model.layers.0.self_attn.q_proj.bias');
    assert.equal(qwen.layers[0].o.tensors.bias, undefined);
    assert.equal(qwen.model.lmHead.tensors.weight.name, 'lm_head.weight');
    assert.equal(qwen.model.beaconEmbed, undefined);
    assert.equal(qwen.layers[0].beaconQ, undefined, 'no beacon rows without a beacon config');
    const tied = tinyModel('tiny', { tie: true }).tensors;
    assert.equal(tied.model.lmHead, tied.model.embed);
    assert.deepEqual(qwen.layers[1].gate.tensors.weight, { name: 'model.layers.1.mlp.gate_proj.weight', shape: [64, 32] });
  });

  it('beacon checkpoints: v3 beacon q/k/v, base o; v1 its own beacon o', () => {
    const v3 = tinyModel('tiny-beacon').tensors.layers[0];
    assert.equal(v3.beaconQ.tensors.weight.name, 'model.layers.0.self_attn.beacon_q_proj.weight');
    assert.equal(v3.beaconO, v3.o);
    const v1 = tinyModel('tiny-beacon-v1').tensors.layers[1];
    assert.equal(v1.beaconO.tensors.weight.name, 'model.layers.1.self_attn.beacon_o_proj.weight');
  });

  it('lists each distinct tensor once', () => {
    const m = tinyModel('tiny-beacon', { tie: true });
    const names = distinctTensors(m.tensors).map((t) => t.name);
    assert.equal(new Set(names).size, names.length);
    assert.deepEqual(new Set(names), new Set(m.weights.names()));
  });

  it('one more row is checked and resolved like the others (e.g. Qwen3 q/k norms)', () => {
    const m = tinyModel('tiny');
    const withNorms: ArchTensors = {
      model: LLAMA_DECODER.model,
      layer: [...LLAMA_DECODER.layer, { role: 'qNorm', kind: 'norm', path: 'self_attn.q_norm', tensors: { weight: { shape: (c) => [c.headDim] } } }],
    };
    assert.throws(() => resolveTensors(withNorms, m.config, m.weights, m.dir), /weights lack tensor "model\.layers\.0\.self_attn\.q_norm\.weight"/);
    const optional: ArchTensors = { ...withNorms, layer: withNorms.layer.map((r) => (r.role === 'qNorm' ? { ...r, optional: true } : r)) };
    assert.equal(resolveTensors(optional, m.config, m.weights, m.dir).layers[0].qNorm, undefined);
  });
});

describe('the tensor table: CLEX and Phi-2', () => {
  it('a CLEX checkpoint adds one host module, model.clex_layer, shaped by the rotary dims and param_factor', () => {
    const m = tinyModel('tiny-clex', { clex: { maxFactor: 4, paramFactor: 2 } });
    const clex = m.tensors.model.clex;
    assert.equal(clex.kind, 'host');
    assert.deepEqual(Object.values(clex.tensors), [
      { name: 'model.clex_layer.inv_freq', shape: [4] },
      { name: 'model.clex_layer.proj_func.ode_up_proj', shape: [4, 16] },
      { name: 'model.clex_layer.proj_func.ode_down_proj', shape: [16, 4] },
    ]);
    assert.equal(tinyModel('tiny').tensors.model.clex, undefined, 'no CLEX row without rope_scaling clex');
  });

  it('a CLEX config whose tensors are missing or of another param_factor is refused, naming the tensor', () => {
    const m = tinyModel('tiny-clex');
    const names = new Set(m.weights.names());
    const without = { has: (n: string) => names.has(n) && n !== 'model.clex_layer.proj_func.ode_down_proj', info: (n: string) => m.weights.info(n) };
    assert.throws(() => resolveTensors(LLAMA_DECODER, m.config, without, m.dir), (e: CtxError) => e.exitCode === 5 && /weights lack tensor "model.clex_layer.proj_func.ode_down_proj"/.test(e.message));
    const p2 = { ...m.config, ropeScaling: { ...(m.config.ropeScaling as ClexScaling), paramFactor: 2 } };
    assert.throws(() => resolveTensors(LLAMA_DECODER, p2, m.weights, m.dir), /tensor "model.clex_layer.proj_func.ode_up_proj" has shape \[4,8\] but config.json implies \[4,16\]/);
  });

  it('Phi-2: dense, fc1/fc2 as up/down, LayerNorms and every projection with a bias, no post-attention norm', () => {
    const m = openModel(join(import.meta.dirname, '..', '..', 'fixtures', 'golden-phi', 'models', 'phi2-tiny'));
    const l = m.tensors.layers[1];
    assert.deepEqual(Object.keys(l).sort(), ['down', 'inputNorm', 'k', 'o', 'q', 'up', 'v']);
    assert.equal(l.o.tensors.bias.name, 'model.layers.1.self_attn.dense.bias');
    assert.equal(l.up.tensors.weight.name, 'model.layers.1.mlp.fc1.weight');
    assert.equal(l.down.tensors.bias.name, 'model.layers.1.mlp.fc2.bias');
    assert.equal(l.inputNorm.tensors.bias.name, 'model.layers.1.input_layernorm.bias');
    assert.equal(m.tensors.model.finalNorm.tensors.bias.name, 'model.final_layernorm.bias');
    assert.equal(m.tensors.model.lmHead.tensors.bias.name, 'lm_head.bias');
    assert.equal(distinctTensors(m.tensors).length, m.weights.names().length);
  });
});
