// FocusLLM's config keys (src/model/focus-config.ts) and how a model with them opens: official
// defaults, ctx's own keys, refusals naming the file, and the candidate projections in the tensor table.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CtxError } from '../../src/errors.js';
import { parseModelConfig } from '../../src/model/config.js';
import { parseFocusSettings, type FocusSettings } from '../../src/model/focus-config.js';
import { tinyModel } from '../helpers/models.js';

const settings = (extra: Partial<FocusSettings> = {}): FocusSettings => ({ localWindow: 64, stride: 100, shortPromptLimit: 4096, tailCap: 512, bosId: 1, param: ['q', 'k', 'v', 'o'], ...extra });

describe('FocusLLM settings', () => {
  it('a config without memory_stride is not a FocusLLM model', () => assert.equal(parseFocusSettings({ local_window: 80 }, 'c.json'), null));
  it('official defaults for what a checkpoint does not state; ctx keys override the hard-coded constants', () => {
    assert.deepEqual(parseFocusSettings({ memory_stride: [1024] }, 'c.json'), settings({ localWindow: 1024, stride: 1024 }));
    const s = parseFocusSettings({ memory_stride: [72], local_window: 80, focus_short_prompt_limit: 512, focus_tail_cap: 16, focus_bos_token_id: 0 }, 'c.json');
    assert.deepEqual(s, settings({ localWindow: 80, stride: 72, shortPromptLimit: 512, tailCap: 16, bosId: 0 }));
  });
  it('refuses several strides, a window under 32, and a window as large as the threshold (exit 5, file named)', () => {
    const refused = (cfg: Record<string, unknown>, re: RegExp) => assert.throws(() => parseFocusSettings(cfg, 'm/config.json'), (e: CtxError) => e.exitCode === 5 && e.message.startsWith('m/config.json: ') && re.test(e.message));
    refused({ memory_stride: [512, 1024] }, /"memory_stride" must hold exactly one positive stride at inference, got \[512,1024\]/);
    refused({ memory_stride: [64], local_window: 16 }, /"local_window" must be an integer ≥ 32, got 16/);
    refused({ memory_stride: [64], local_window: 4096 }, /"local_window" 4096 must be smaller than the chunking threshold 4096/);
    refused({ memory_stride: [64], beacon_param: ['q', 'x'] }, /"beacon_param" must list some of q, k, v, o, mlp/);
    refused({ memory_stride: [64], beacon_param: ['q', 'k', 'v', 'mlp'] }, /"mlp": candidate MLP projections \(beacon_up_proj, beacon_down_proj\) are not supported/);
  });
});

describe('a FocusLLM model', () => {
  const base = { model_type: 'llama', vocab_size: 64, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 256 };
  it('its config carries the settings; Activation Beacon keys beside them are refused', () => {
    assert.deepEqual(parseModelConfig({ ...base, memory_stride: [72], local_window: 48 }).focus, settings({ localWindow: 48, stride: 72 }));
    assert.equal(parseModelConfig(base).focus, null);
    assert.throws(
      () => parseModelConfig({ ...base, memory_stride: [72], beacon_window: 64 }, 'm/config.json'),
      (e: CtxError) => e.exitCode === 5 && /both Activation Beacon \(beacon_window\) and FocusLLM \(memory_stride\)/.test(e.message),
    );
  });
  it('reads the beacon_{q,k,v,o} candidate projections, not beacon_embed_tokens', () => {
    const m = tinyModel('tiny-focus');
    const layer = m.tensors.layers[0];
    assert.equal(layer.beaconQ.tensors.weight.name, 'model.layers.0.self_attn.beacon_q_proj.weight');
    assert.equal(layer.beaconO.tensors.weight.name, 'model.layers.0.self_attn.beacon_o_proj.weight');
    assert.equal(m.tensors.model.beaconEmbed, undefined, 'stored in the checkpoint, never read');
    const noO = tinyModel('tiny-focus', { focus: { localWindow: 32, stride: 24, shortPromptLimit: 96, param: ['q', 'k', 'v'] } });
    assert.equal(noO.tensors.layers[0].beaconO, noO.tensors.layers[0].o, 'without "o" in beacon_param, the base o_proj');
  });
});

