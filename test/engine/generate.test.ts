// Sampling and the generation loop: greedy, seeds, top-k/top-p, repetition penalty, stop tokens,
// stop strings held back until decided, token limits.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createReferenceBackend } from '../../src/backend/reference/index.js';
import { generate, type GenerateEvent } from '../../src/engine/generate.js';
import { Sampler } from '../../src/engine/sampler.js';
import { Session } from '../../src/engine/session.js';
import { resolveStrategy } from '../../src/engine/strategies/index.js';
import { tinyModel, tokens } from '../helpers/models.js';

const logits = Float32Array.from([0.1, 2.0, 1.9, -1, 0.5]);

describe('sampler', () => {
  it('greedy takes the argmax', () => assert.equal(new Sampler().sample(logits, 5), 1));
  it('top-k 1 and a tiny top-p are greedy at any temperature', () => {
    assert.equal(new Sampler({ temperature: 5, topK: 1 }).sample(logits, 5), 1);
    assert.equal(new Sampler({ temperature: 5, topP: 1e-6 }).sample(logits, 5), 1);
  });
  it('is reproducible for a seed and samples several tokens at high temperature', () => {
    const draw = (seed: number) => Array.from({ length: 50 }, ((s) => () => s.sample(logits, 5))(new Sampler({ temperature: 3, seed })));
    assert.deepEqual(draw(1), draw(1));
    assert.ok(new Set(draw(1)).size >= 3);
  });
  it('repetition penalty demotes tokens already generated', () => {
    assert.equal(new Sampler({ repetitionPenalty: 1.2 }).sample(logits, 5, [1]), 2);
  });
});

/** A detokenizer that spells token id t as the letter at t mod 26. */
const letters = () => ({ push: (id: number) => String.fromCharCode(97 + (id % 26)), flush: () => '' });

async function collect(it: AsyncGenerator<GenerateEvent>) {
  let text = '';
  let done: GenerateEvent | undefined;
  for await (const e of it) {
    if (e.type === 'token') text += e.text;
    else done = e;
  }
  return { text, done: done as Extract<GenerateEvent, { type: 'done' }> };
}

describe('generate', () => {
  const setup = async () => {
    const model = tinyModel('tiny');
    const backend = await createReferenceBackend(model);
    const mk = () => new Session(backend, resolveStrategy(model.config, { strategy: 'full' }, 60));
    return { mk };
  };

  it('stops at the token limit and streams one piece per token', async () => {
    const { mk } = await setup();
    const r = await collect(generate(mk(), tokens(20), { maxTokens: 7, stopTokens: [], detokenizer: letters() }));
    assert.equal(r.done.reason, 'length');
    assert.equal(r.done.generated, 7);
    assert.equal(r.text.length, 7);
  });

  it('stops at a stop token, which joins the history unfed', async () => {
    const { mk } = await setup();
    const free = await collect(generate(mk(), tokens(20), { maxTokens: 5, stopTokens: [], detokenizer: letters() }));
    const s = mk();
    const seen: number[] = [];
    const gen = generate(s, tokens(20), { maxTokens: 5, stopTokens: [], detokenizer: { push: (id) => (seen.push(id), 'x'), flush: () => '' } });
    for await (const _ of gen);
    const third = seen[2];
    const s2 = mk();
    const r = await collect(generate(s2, tokens(20), { maxTokens: 5, stopTokens: [third], detokenizer: letters() }));
    assert.equal(r.done.reason, 'eos');
    assert.equal(r.text, free.text.slice(0, 2));
    assert.deepEqual([...s2.pendingTokens()], [third], 'the stop token is in the history, unfed');
  });

  it('cuts at a stop string and never emits its prefix early', async () => {
    const { mk } = await setup();
    const free = await collect(generate(mk(), tokens(20), { maxTokens: 12, stopTokens: [], detokenizer: letters() }));
    const stop = free.text.slice(5, 8);
    const pieces: string[] = [];
    for await (const e of generate(mk(), tokens(20), { maxTokens: 12, stopTokens: [], stopStrings: [stop], detokenizer: letters() })) {
      if (e.type === 'token') pieces.push(e.text);
      else assert.equal(e.reason, 'stop');
    }
    const first = free.text.indexOf(stop);
    assert.equal(pieces.join(''), free.text.slice(0, first));
  });

  it('stops when the strategy runs out of positions', async () => {
    const model = tinyModel('tiny');
    const backend = await createReferenceBackend(model);
    const s = new Session(backend, resolveStrategy(model.config, { strategy: 'full' }, 100));
    const r = await collect(generate(s, tokens(120), { maxTokens: 50, stopTokens: [], detokenizer: letters() }));
    assert.equal(r.done.reason, 'window');
    assert.equal(s.stats().totalRows, 128, 'every position used');
    assert.equal(s.fedTokens + s.pendingTokens().length, 129, 'the last sampled token is in the history, unfed');
  });
});
