// TokenSelect's selection cache (--select-reuse, θ = 0.9) on a trained model, the demo: while the
// model reads ordinary text token by token its mean query hardly moves (median cosine with the
// cached one 0.97), so nearly every layer step reuses its selection; where the text alternates
// between unrelated tokens (the demo's own answer loop "606 </s> 606 </s> …") it must not. On random
// weights consecutive queries are unrelated and the cache rarely fires: that is the model, not the cache.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Backend } from '../../src/backend/contract.js';
import type { CpuBackend } from '../../src/backend/cpu/index.js';
import { demoModelDir, makeNeedleDocument } from '../../src/demo/index.js';
import { Conversation } from '../../src/engine/conversation.js';
import { Session } from '../../src/engine/session.js';
import { resolveStrategy } from '../../src/engine/strategies/index.js';
import type { Model } from '../../src/model/model.js';
import type { TextTokenizer } from '../../src/model/tokenizer.js';
import { loadOnCpu } from './helpers.js';

let model: Model;
let tokenizer: TextTokenizer;
let backend: Backend;

before(async () => ({ model, tokenizer, backend } = await loadOnCpu(demoModelDir())));
after(async () => backend?.dispose());

const argmax = (v: Float32Array) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);

/** Share of layer selections that reused the cached one over `steps` decode steps after `prompt`. */
async function reuseRate(prompt: Int32Array, steps: number, forced: boolean): Promise<number> {
  const session = new Session(backend, resolveStrategy(model.config, { strategy: 'select' }, prompt.length + steps));
  const head = forced ? prompt.subarray(0, prompt.length - steps) : prompt;
  let logits = await session.feed(head);
  const profile = (backend as CpuBackend).profile;
  profile.reset();
  for (let i = 0; i < steps; i++) logits = await session.feed(Int32Array.of(forced ? prompt[head.length + i] : argmax(logits)), { decoding: true });
  session.dispose();
  return profile.reused / (profile.reused + profile.voted);
}

describe('selection reuse on the trained demo model (θ 0.9)', () => {
  const prompts = () =>
    [0, 1, 2].map((k) => {
      const doc = makeNeedleDocument({ tokens: 1500, depth: 0.3 + 0.2 * k, seed: 200 + k });
      const conversation = new Conversation(tokenizer);
      return Int32Array.from([...conversation.documentPrefix(), ...tokenizer.encode(doc.text), ...conversation.firstQuestion(doc.question)]);
    });

  it('fires at nearly every layer step while the model reads text token by token', async (t) => {
    const rates = [];
    for (const p of prompts()) rates.push(await reuseRate(p, 24, true));
    t.diagnostic(`reused: ${rates.map((r) => `${(100 * r).toFixed(0)}%`).join(', ')}`);
    for (const r of rates) assert.ok(r >= 0.8, `reuse ${r}`);
  });

  it('stays off while its answer alternates between unrelated tokens', async (t) => {
    const rates = [];
    for (const p of prompts()) rates.push(await reuseRate(p, 16, false));
    t.diagnostic(`reused: ${rates.map((r) => `${(100 * r).toFixed(0)}%`).join(', ')}`);
    for (const r of rates) assert.ok(r <= 0.3, `reuse ${r}`);
  });
});
