// Softplus attention's config keys (src/model/softplus-config.ts): parsing and refusals, the
// config a model folder carries, and the run-time choice of the re-weighting (openModel's option).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createReferenceBackend } from '../../src/backend/reference/index.js';
import { digestTokens, sessionKey } from '../../src/cache/key.js';
import { Session } from '../../src/engine/session.js';
import { resolveStrategy } from '../../src/engine/strategies/index.js';
import type { CtxError } from '../../src/errors.js';
import { parseModelConfig } from '../../src/model/config.js';
import { openModel, type Model } from '../../src/model/model.js';
import {
  describeSoftplus,
  parseReweightChoice,
  parseSoftplusAttention,
  softplusConfigKeys,
  withReweight,
  type SoftplusAttention,
} from '../../src/model/softplus-config.js';
import { maxAbsDiff, tinyModel, tinyModelDir, tokens } from '../helpers/models.js';

const LSSA: SoftplusAttention = { scale: 'log_head_dim_x_log_n', reweight: null };
const lssar = (p: number): SoftplusAttention => ({ scale: 'log_head_dim_x_log_n', reweight: { p, offset: 1, noOffsetFirstRows: 3 } });

describe('softplus attention: config keys', () => {
  it('softmax models have none; LSSA and LSSAR parse with the paper defaults', () => {
    assert.equal(parseSoftplusAttention({}, 'c.json'), null);
    assert.equal(parseSoftplusAttention({ attention_type: 'softmax' }, 'c.json'), null);
    assert.deepEqual(parseSoftplusAttention({ attention_type: 'softplus', softplus_reweight: null }, 'c.json'), LSSA);
    assert.deepEqual(
      parseSoftplusAttention({ attention_type: 'softplus', softplus_scale: 'log_head_dim_x_log_n', softplus_qk_norm: true, softplus_reweight: { p: 15 } }, 'c.json'),
      lssar(15),
    );
  });
  it('refuses what it cannot run, naming the file (exit 5)', () => {
    const refused = (cfg: Record<string, unknown>, re: RegExp) => assert.throws(() => parseSoftplusAttention(cfg, 'm/config.json'), (e: CtxError) => e.exitCode === 5 && re.test(e.message));
    refused({ attention_type: 'sigmoid' }, /^m\/config.json: config.json "attention_type" "sigmoid" is not supported/);
    refused({ attention_type: 'softplus', softplus_qk_norm: false }, /"softplus_qk_norm" must be true/);
    refused({ attention_type: 'softplus', softplus_scale: 'log_n' }, /"softplus_scale" "log_n" is not supported/);
    refused({ attention_type: 'softplus', softplus_reweight: { p: -1 } }, /"softplus_reweight.p" must be a positive number, got -1/);
  });
});

describe('softplus attention in ModelConfig', () => {
  const base = { model_type: 'qwen2', vocab_size: 10, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 64 };
  it('null for a softmax model; the parsed variant otherwise; written back by softplusConfigKeys', () => {
    assert.equal(parseModelConfig(base).softplus, null);
    for (const sp of [LSSA, lssar(3), lssar(15)]) assert.deepEqual(parseModelConfig({ ...base, ...softplusConfigKeys(sp) }).softplus, sp);
  });
  it('a bad key fails the whole config with the file named', () => {
    assert.throws(() => parseModelConfig({ ...base, attention_type: 'linear' }, 'x/config.json'), /x\/config.json: config.json "attention_type" "linear" is not supported/);
  });
  it('is refused beside CLEX log_scale, whose query scaling cosine similarities would ignore', () => {
    const clex = { rope_scaling: { type: 'clex', factor: 1, max_factor: 4, param_factor: 1, time_dt: 0.01, act: 'tanh' }, log_scale: true, use_flashattn: true };
    assert.throws(() => parseModelConfig({ ...base, ...clex, ...softplusConfigKeys(LSSA) }, 'x/config.json'), /x\/config.json: config.json has both CLEX log_scale and softplus attention/);
    assert.deepEqual(parseModelConfig({ ...base, ...clex, log_scale: false, use_flashattn: false, ...softplusConfigKeys(LSSA) }).softplus, LSSA);
  });
  it('describes itself for plans and `models info`', () => {
    assert.equal(describeSoftplus(null), null);
    assert.equal(describeSoftplus(LSSA), 'softplus attention (LSSA)');
    assert.equal(describeSoftplus(lssar(15)), 'softplus attention (LSSAR p=15)');
  });
});

describe('run-time re-weighting (--softplus-reweight)', () => {
  it('parses off or a power in (0, 1000]', () => {
    assert.equal(parseReweightChoice('off'), 'off');
    assert.equal(parseReweightChoice('3'), 3);
    assert.equal(parseReweightChoice('15'), 15);
    assert.equal(parseReweightChoice('2.5'), 2.5);
    for (const bad of ['', ' ', '0', '-1', '1001', 'on', 'NaN', 'Infinity']) assert.equal(parseReweightChoice(bad), null, bad);
  });
  it('off turns LSSAR into LSSA; p replaces the power and keeps the model\'s offset rule (the paper\'s when it has none)', () => {
    assert.deepEqual(withReweight(lssar(15), 'off', 'm'), LSSA);
    assert.deepEqual(withReweight(LSSA, 15, 'm'), lssar(15));
    assert.deepEqual(withReweight(lssar(15), 3, 'm'), lssar(3));
    const own: SoftplusAttention = { scale: 'log_head_dim_x_log_n', reweight: { p: 15, offset: 0.5, noOffsetFirstRows: 8 } };
    assert.deepEqual(withReweight(own, 3, 'm'), { ...own, reweight: { p: 3, offset: 0.5, noOffsetFirstRows: 8 } });
  });
  it('is refused for a softmax model, naming it (exit 2)', () => {
    assert.throws(
      () => withReweight(null, 15, 'qwen2.5-0.5b'),
      (e: CtxError) => e.exitCode === 2 && /^--softplus-reweight applies to softplus-attention models; qwen2.5-0.5b uses softmax attention/.test(e.message),
    );
  });
});

describe('openModel with a run-time re-weighting', () => {
  it('replaces the config\'s re-weighting; the run equals a model whose config.json says the same', async () => {
    const dir = tinyModelDir('tiny', { seed: 3, softplus: lssar(15) });
    assert.deepEqual(openModel(dir).config.softplus, lssar(15));
    assert.deepEqual(openModel(dir, { softplusReweight: 3 }).config.softplus, lssar(3));
    const overridden = openModel(dir, { softplusReweight: 'off' });
    assert.deepEqual(overridden.config.softplus, LSSA);
    // Same weights (the seed), LSSA in config.json: identical logits on the reference backend.
    const written = tinyModel('tiny', { seed: 3, softplus: LSSA });
    const doc = tokens(40, 5, 3, 320);
    const logits = async (m: Model) => {
      const session = new Session(await createReferenceBackend(m), resolveStrategy(m.config, { strategy: 'full' }, doc.length));
      return session.feed(doc, { allLogits: true });
    };
    const [a, b, c] = [await logits(overridden), await logits(written), await logits(openModel(dir))];
    assert.deepEqual(a, b);
    assert.ok(maxAbsDiff(a, c) > 1e-2, 'the override changes what runs');
  });
  it('a read document cached under one re-weighting is not reused under another (the key hashes the config)', () => {
    const dir = tinyModelDir('tiny', { seed: 3, softplus: lssar(15) });
    const key = (m: Model) =>
      sessionKey({ prefix: digestTokens(Int32Array.of(1)), document: digestTokens(Int32Array.of(2, 3)), modelFingerprint: 'f', modelConfig: m.config, strategy: resolveStrategy(m.config, { strategy: 'full' }, 3), backend: 'cpu', numeric: 'f32' });
    const keys = [openModel(dir), openModel(dir, { softplusReweight: 15 }), openModel(dir, { softplusReweight: 3 }), openModel(dir, { softplusReweight: 'off' })].map(key);
    assert.equal(keys[0], keys[1], 'the config\'s own choice, given explicitly, is the same run');
    assert.equal(new Set(keys.slice(1)).size, 3);
  });
  it('refuses a softmax model, naming its folder (exit 2)', () => {
    const dir = tinyModelDir('tiny', { seed: 3 });
    assert.throws(() => openModel(dir, { softplusReweight: 15 }), (e: CtxError) => e.exitCode === 2 && e.message.includes(`; ${dir} uses softmax attention`));
  });
});
