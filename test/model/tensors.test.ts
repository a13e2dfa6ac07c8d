// The tensor table (src/model/tensors.ts): what a model's tensors resolve to, fallbacks, and that
// one more row is all a loader needs to know about a new tensor.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
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
