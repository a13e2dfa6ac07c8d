// The committed demo model folder (models/needle-demo) and demo document (fixtures/demo).
import assert from 'node:assert/strict';
import { openSync, readFileSync, readSync, readdirSync, statSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { demoDocumentPath, demoModelDir, makeNeedleDocument } from '../../src/demo/index.js';

const dir = demoModelDir();
const readJson = (p: string) => JSON.parse(readFileSync(p, 'utf8'));

function safetensorsHeader(path: string): Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }> {
  const fd = openSync(path, 'r');
  try {
    const len = Buffer.alloc(8);
    readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const buf = Buffer.alloc(n);
    readSync(fd, buf, 0, n, 8);
    const h = JSON.parse(buf.toString('utf8'));
    delete h.__metadata__;
    return h;
  } finally {
    closeSync(fd);
  }
}

describe('demo model folder', () => {
  const config = readJson(join(dir, 'config.json'));

  it('is a Qwen2 config with the v3 beacon keys', () => {
    assert.equal(config.model_type, 'qwen2');
    assert.deepEqual(config.architectures, ['Qwen2ForCausalLM']);
    const want = {
      vocab_size: 512, hidden_size: 128, intermediate_size: 512, num_hidden_layers: 4, num_attention_heads: 4,
      num_key_value_heads: 2, max_position_embeddings: 1024, tie_word_embeddings: true,
      beacon_window: 64, beacon_stride: 64, beacon_attn: 'full-coverage', beacon_ratio_mix: 'adapt-1024',
      beacon_param: ['q', 'k', 'v'], beacon_embed_init: 'eos', beacon_sink_size: 0, beacon_attend_prev: true,
      beacon_pos: 'interleave', beacon_parallel_window: 1,
    };
    for (const [k, v] of Object.entries(want)) assert.deepEqual(config[k], v, k);
    for (const r of [2, 4, 8]) assert.ok(config.beacon_ratio.includes(r));
    for (const r of config.beacon_ratio) assert.equal(64 % r, 0);
    assert.equal(typeof config.rope_theta, 'number');
    assert.equal(typeof config.rms_norm_eps, 'number');
  });

  it('has float16 weights with the standard names, and fits in 5 MB', () => {
    const h = safetensorsHeader(join(dir, 'model.safetensors'));
    const hid = 128;
    const expect: Record<string, number[]> = { 'model.embed_tokens.weight': [512, hid], 'model.norm.weight': [hid], 'model.beacon_embed_tokens.weight': [1, hid] };
    for (let l = 0; l < 4; l++) {
      const p = `model.layers.${l}.`;
      Object.assign(expect, {
        [p + 'input_layernorm.weight']: [hid], [p + 'post_attention_layernorm.weight']: [hid],
        [p + 'mlp.gate_proj.weight']: [512, hid], [p + 'mlp.up_proj.weight']: [512, hid], [p + 'mlp.down_proj.weight']: [hid, 512],
        [p + 'self_attn.o_proj.weight']: [hid, hid],
      });
      for (const pre of ['', 'beacon_']) {
        Object.assign(expect, {
          [p + `self_attn.${pre}q_proj.weight`]: [hid, hid], [p + `self_attn.${pre}q_proj.bias`]: [hid],
          [p + `self_attn.${pre}k_proj.weight`]: [64, hid], [p + `self_attn.${pre}k_proj.bias`]: [64],
          [p + `self_attn.${pre}v_proj.weight`]: [64, hid], [p + `self_attn.${pre}v_proj.bias`]: [64],
        });
      }
    }
    assert.deepEqual(Object.keys(h).sort(), Object.keys(expect).sort());
    for (const [name, t] of Object.entries(h)) {
      assert.equal(t.dtype, 'F16', name);
      assert.deepEqual(t.shape, expect[name], name);
    }
    let total = 0;
    for (const f of readdirSync(dir)) total += statSync(join(dir, f)).size;
    assert.ok(total <= 5 * 1024 * 1024, `model folder is ${total} bytes`);
  });

  it('ships the demo document that make-demo-doc.ts generates: several people, one asked about', () => {
    const held = readJson(demoDocumentPath().replace(/\.txt$/, '.json'));
    const doc = makeNeedleDocument({ tokens: held.tokens, depth: held.depth, seed: held.seed, facts: held.facts.length, distractors: held.distractors.length });
    assert.equal(readFileSync(demoDocumentPath(), 'utf8'), doc.text);
    assert.deepEqual(doc.facts, held.facts);
    assert.deepEqual(doc.distractors, held.distractors);
    assert.equal(doc.question, held.question);
    assert.equal(doc.answer, held.answer);
    assert.ok(doc.facts.length >= 4 && doc.distractors.length >= 1, 'the answer needs binding: several people');
    assert.ok(held.tokens >= 20000, 'far longer than the window');
    const readme = readFileSync(join(demoDocumentPath(), '..', 'README.md'), 'utf8');
    assert.ok(readme.includes(held.question) && readme.includes(held.answer));
  });
});
