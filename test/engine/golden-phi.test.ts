// The plain Phi-2 golden cases in fixtures/golden-phi (tools/golden-phi/make_cases.py): the files are
// complete and self-consistent, the model holds exactly the tensors a Phi-2 checkpoint holds, every
// case passes on the reference and cpu backends, and the native backend refuses Phi with a clear
// message (it runs Llama-style blocks only).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findGoldenCases, formatGoldenResult, loadGoldenCase, readExpectedTensor, runGoldenCase } from '../../src/engine/golden.js';
import { createNativeBackend } from '../../src/backend/native/index.js';
import { CtxError } from '../../src/errors.js';
import { parseModelConfig } from '../../src/model/config.js';
import { openModel } from '../../src/model/model.js';
import { WeightStore } from '../../src/model/weights.js';
import { testCacheDir } from '../backend/cpu/helpers.js';
import { argmaxRows } from '../helpers/compare.js';

const ROOT = join(import.meta.dirname, '..', '..', 'fixtures', 'golden-phi');
const MODEL = join(ROOT, 'models', 'phi2-tiny');
const config = JSON.parse(readFileSync(join(MODEL, 'config.json'), 'utf8')) as Record<string, unknown>;

describe('Phi-2 golden fixtures', () => {
  const dirs = findGoldenCases(ROOT);
  it('two plain cases, prompt and greedy ids consistent with the recorded logits', () => {
    assert.deepEqual(dirs.map((d) => loadGoldenCase(d).name), ['phi2-plain-n180', 'phi2-plain-n24']);
    for (const dir of dirs) {
      const c = loadGoldenCase(dir);
      assert.equal(c.kind, 'plain');
      assert.equal(c.tolerance!.suggested_atol, 2e-4);
      const prefill = readExpectedTensor(dir, 'prefill_logits');
      const steps = readExpectedTensor(dir, 'step_logits');
      const V = config.vocab_size as number;
      assert.deepEqual([prefill.shape, steps.shape], [[c.n_input, V], [c.greedy_steps, V]]);
      const ids = [...argmaxRows(prefill.data.subarray((c.n_input - 1) * V), V), ...argmaxRows(steps.data, V)];
      assert.deepEqual(ids.slice(0, c.greedy_steps), c.expected_greedy_ids);
      // Every typical mistake lands outside the tolerance (the generator chose the seed for that).
      const sens = c.tolerance!.sensitivity as Record<string, { prefill: number; steps: number } | string>;
      for (const [what, d] of Object.entries(sens)) {
        if (typeof d === 'string') continue;
        assert.ok(Math.max(d.prefill, d.steps) > 5 * 2e-4, `${c.name}: ${what} moves logits by only ${JSON.stringify(d)}`);
      }
    }
  });
  it('the config and tensors are those of a Phi-2 checkpoint: partial rotary, LayerNorm with bias, biases everywhere, dense', () => {
    assert.equal(config.model_type, 'phi');
    assert.equal(config.hidden_act, 'gelu_new');
    assert.equal(config.partial_rotary_factor, 0.5);
    const w = WeightStore.open(MODEL);
    const H = 64;
    const I = 128;
    const want: Record<string, number[]> = { 'model.embed_tokens.weight': [96, H], 'model.final_layernorm.weight': [H], 'model.final_layernorm.bias': [H], 'lm_head.weight': [96, H], 'lm_head.bias': [96] };
    for (let l = 0; l < 2; l++) {
      const p = `model.layers.${l}.`;
      Object.assign(want, {
        [`${p}input_layernorm.weight`]: [H], [`${p}input_layernorm.bias`]: [H],
        [`${p}self_attn.q_proj.weight`]: [H, H], [`${p}self_attn.q_proj.bias`]: [H],
        [`${p}self_attn.k_proj.weight`]: [H, H], [`${p}self_attn.k_proj.bias`]: [H],
        [`${p}self_attn.v_proj.weight`]: [H, H], [`${p}self_attn.v_proj.bias`]: [H],
        [`${p}self_attn.dense.weight`]: [H, H], [`${p}self_attn.dense.bias`]: [H],
        [`${p}mlp.fc1.weight`]: [I, H], [`${p}mlp.fc1.bias`]: [I],
        [`${p}mlp.fc2.weight`]: [H, I], [`${p}mlp.fc2.bias`]: [H],
      });
    }
    assert.deepEqual(w.names().sort(), Object.keys(want).sort());
    for (const [name, shape] of Object.entries(want)) assert.deepEqual(w.info(name).shape, shape, name);
  });

  it('parses as phi: partial rotary 8 of 16 dims, LayerNorm eps 1e-5, GELU (tanh), parallel blocks, biases', () => {
    const c = parseModelConfig(config, MODEL);
    assert.equal(c.arch, 'phi');
    assert.deepEqual([c.headDim, c.rotaryDim, c.rmsNormEps, c.qkvBias], [16, 8, 1e-5, true]);
    assert.deepEqual(c.block, { norm: 'layer', mlp: 'gelu_tanh', parallel: true });
    assert.throws(() => parseModelConfig({ ...config, hidden_act: 'gelu' }, MODEL), /unsupported hidden_act "gelu" for phi \(ctx runs gelu_new or gelu_pytorch_tanh\)/);
    assert.throws(() => parseModelConfig({ ...config, qk_layernorm: true }, MODEL), /qk_layernorm is not supported/);
    assert.throws(() => parseModelConfig({ ...config, partial_rotary_factor: 0.1 }, MODEL), /partial_rotary_factor 0.1 gives 1 rotary dimensions/);
  });

  // runGoldenCase builds its backend through createBackend: the cpu backend's converted weights go to a temporary folder.
  process.env.CTX_CACHE_DIR = testCacheDir();
  for (const backend of ['reference', 'cpu'] as const) {
    for (const dir of dirs) {
      it(`${dir.split('/').pop()} on the ${backend} backend`, async (t) => {
        const r = await runGoldenCase(ROOT, dir, backend);
        t.diagnostic(formatGoldenResult(r));
        assert.ok(r.passed, formatGoldenResult(r));
      });
    }
  }

  it('the native backend refuses Phi before loading anything, naming the backends that run it', async () => {
    await assert.rejects(
      createNativeBackend(openModel(MODEL), { device: 'host' }),
      (e: CtxError) => e.exitCode === 2 && /the cuda backend runs Llama-style blocks .* runs on --backend cpu or --backend reference/.test(e.message),
    );
  });
});
