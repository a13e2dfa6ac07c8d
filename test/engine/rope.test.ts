// RoPE tables: each scaling against its formula (ALGORITHMS.md §3).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createReferenceBackend } from '../../src/backend/reference/index.js';
import { baseInvFreq, ropeCapacity, ropeTable } from '../../src/engine/rope.js';
import { Session } from '../../src/engine/session.js';
import { resolveStrategy } from '../../src/engine/strategies/index.js';
import { parseModelConfig } from '../../src/model/config.js';
import { tinyModel, tokens } from '../helpers/models.js';

const cfg = (extra: Record<string, unknown> = {}) =>
  parseModelConfig({
    model_type: 'llama', vocab_size: 10, hidden_size: 64, intermediate_size: 8, num_hidden_layers: 1,
    num_attention_heads: 1, num_key_value_heads: 1, max_position_embeddings: 1024, rope_theta: 10000, ...extra,
  });
const close = (a: number, b: number, rel = 1e-6) => Math.abs(a - b) <= rel * Math.max(Math.abs(a), Math.abs(b), 1e-30);

describe('rope tables', () => {
  const c = cfg();
  const base = baseInvFreq(64, 10000);
  it('base θ_i = 10000^(-2i/64)', () => {
    for (let i = 0; i < 32; i++) assert.ok(close(base[i], Math.pow(10000, -(2 * i) / 64)));
  });
  it('linear (PI) divides every frequency by s', () => {
    const t = ropeTable(c, { type: 'linear', factor: 4 }, 0);
    t.invFreq.forEach((v, i) => assert.ok(close(v, base[i] / 4)));
    assert.equal(ropeCapacity(c, { type: 'linear', factor: 4 }), 4096);
  });
  it('NTK raises the base to b·s^(D/(D−2))', () => {
    const t = ropeTable(c, { type: 'ntk', factor: 4 }, 0);
    const b2 = 10000 * Math.pow(4, 64 / 62);
    t.invFreq.forEach((v, i) => assert.ok(close(v, Math.pow(b2, -(2 * i) / 64))));
  });
  it('dynamic NTK equals the base table within the window and grows the base beyond it', () => {
    assert.deepEqual(ropeTable(c, { type: 'dynamic', factor: 2 }, 1024).invFreq, base);
    const t = ropeTable(c, { type: 'dynamic', factor: 2 }, 4096);
    const b2 = 10000 * Math.pow((2 * 4096) / 1024 - 1, 64 / 62);
    assert.ok(close(t.invFreq[5], Math.pow(b2, -10 / 64)));
  });
  it('YaRN keeps high frequencies, interpolates low ones, and scales cos/sin by 0.1 ln s + 1', () => {
    const t = ropeTable(c, { type: 'yarn', factor: 8 }, 0);
    assert.ok(close(t.invFreq[0], base[0]));
    assert.ok(close(t.invFreq[31], base[31] / 8));
    assert.ok(close(t.scale, 0.1 * Math.log(8) + 1));
  });
  it('truncated basis keeps θ ≥ 2π/L, sets [c/8, c) to 2π/(16L), and zeroes the rest', () => {
    const t = ropeTable(c, { type: 'truncated', factor: 1 }, 0);
    const cut = (2 * Math.PI) / 1024;
    base.forEach((v, i) => {
      const want = v >= cut ? v : v >= cut / 8 ? (2 * Math.PI) / (16 * 1024) : 0;
      assert.ok(close(t.invFreq[i], want), `i=${i}`);
    });
  });
  it('llama3 scaling from config keeps short wavelengths and divides long ones by the factor', () => {
    const l3 = cfg({ rope_theta: 500000, max_position_embeddings: 131072, rope_scaling: { rope_type: 'llama3', factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 } });
    const t = ropeTable(l3, null, 0);
    const b = baseInvFreq(64, 500000);
    assert.ok(close(t.invFreq[0], b[0]));
    assert.ok(close(t.invFreq[31], b[31] / 32));
    assert.equal(ropeCapacity(l3, null), 131072);
  });
  it('full with YaRN runs past the native window', async () => {
    const model = tinyModel('tiny');
    const backend = await createReferenceBackend(model);
    const r = resolveStrategy(model.config, { strategy: 'full', rope: { type: 'yarn', factor: 4 } }, 400);
    assert.equal(r.name === 'full' && r.capacity, 512);
    const s = new Session(backend, r);
    const logits = await s.feed(tokens(400));
    assert.ok(logits.every(Number.isFinite));
  });
});
