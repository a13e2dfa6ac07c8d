// The native backend (--backend cuda; its host kernels here) on GGUF files: it reads the F32, F16
// and BF16 tensors of a file in Hugging Face row order, as it reads safetensors, and refuses a
// quantized type, or llama's reordered q/k rows, with one clear message naming the tensor.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createNativeBackend, nativeAvailable } from '../../../src/backend/native/index.js';
import { createReferenceBackend } from '../../../src/backend/reference/index.js';
import { CtxError } from '../../../src/errors.js';
import { openGgufModel } from '../../../src/model/model.js';
import { wideModel, writeFixture } from '../../model/gguf/helpers.js';
import { compareRuns, range, ropeOf, runOps, tokens } from './helpers.js';

const native = nativeAvailable();
const skip = native.available ? false : `native addon unavailable: ${native.reason}`;

describe('native backend on GGUF files', { skip }, () => {
  for (const type of ['F32', 'BF16'] as const) {
    it(`qwen2 ${type}: the reference's logits`, async () => {
      const model = await openGgufModel(writeFixture(wideModel('qwen2', { seed: 21 }), type));
      const ref = await createReferenceBackend(model);
      const host = await createNativeBackend(model, { device: 'host' });
      try {
        const rope = ropeOf(model);
        const doc = tokens(24, model.config.vocabSize, 3);
        const ops = [{ step: { tokens: doc, positions: range(0, 24), mask: { kind: 'causal' as const }, logitRows: range(0, 24), rope } }];
        const d = compareRuns(await runOps(ref, ops), await runOps(host, ops));
        assert.ok(d <= 1e-3, `max |Δlogit| ${d}`);
      } finally {
        await host.dispose();
        await ref.dispose();
      }
    });
  }

  it('refuses a quantized type and llama\'s reordered rows, naming the tensor', async () => {
    const q4 = await openGgufModel(writeFixture(wideModel('qwen2', { seed: 22 }), 'Q4_K'));
    await assert.rejects(createNativeBackend(q4, { device: 'host' }), (e: unknown) => {
      assert.ok(e instanceof CtxError && e.kind === 'model');
      assert.match(e.message, /the cuda backend does not read GGUF Q4_K tensors yet \(token_embd\.weight\); it reads F32, F16 and BF16 GGUF files\. Use --backend cpu/);
      return true;
    });
    const llama = await openGgufModel(writeFixture(wideModel('llama', { seed: 23 }), 'F32'));
    await assert.rejects(createNativeBackend(llama, { device: 'host' }), /cannot read blk\.0\.attn_q\.weight: llama\.cpp stores llama q\/k rows in its own order/);
  });
});
