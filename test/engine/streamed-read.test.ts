// Issue 21.5: a document too long to hold is fed in blocks as it is encoded again. The blocks are cut
// at the strategy's own step boundaries, so the session ends exactly as one feed of the whole prompt
// leaves it (same rows, same logits after); DocumentTokens keeps few ids and checks the second
// encoding against the first.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createReferenceBackend } from '../../src/backend/reference/index.js';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { digestTokens } from '../../src/cache/key.js';
import { TokenMemo } from '../../src/cache/token-memo.js';
import { DocumentTokens } from '../../src/engine/document-tokens.js';
import type { LoadedModel } from '../../src/engine/loaded-model.js';
import type { RunPlan } from '../../src/engine/plan.js';
import { feedBlocks, readDocument, type StreamedPrompt } from '../../src/engine/reader.js';
import { resolveStrategy, type StrategyOptions } from '../../src/engine/strategies/index.js';
import type { Segment } from '../../src/input/document.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { writeTinyTokenizer } from '../../scripts/make-tiny-tokenizer.js';
import { scratchDir } from '../helpers/fixtures.js';
import { tinyModel, tokens } from '../helpers/models.js';

/** The prompt in pieces of awkward sizes (7, 1, 30, …), as a tokenizer gives them. */
function streamed(ids: Int32Array): StreamedPrompt & { largest: number } {
  const sizes = [7, 1, 30, 13, 64, 3];
  const p = {
    length: ids.length,
    largest: 0,
    async *pieces() {
      for (let at = 0, i = 0; at < ids.length; i++) {
        const piece = ids.slice(at, at + sizes[i % sizes.length]!);
        at += piece.length;
        yield piece;
      }
    },
  };
  return p;
}

const cases: Array<{ preset: string; options: StrategyOptions; n: number }> = [
  { preset: 'tiny', options: { strategy: 'stream', sink: 4, recent: 48, chunk: 16 }, n: 300 },
  { preset: 'tiny-beacon', options: { strategy: 'beacon', beaconRatio: 4 }, n: 300 },
  { preset: 'tiny-beacon-v1', options: { strategy: 'beacon' }, n: 300 },
];

describe('a streamed prompt', () => {
  for (const c of cases) {
    it(`leaves the session as one feed does: ${c.preset} ${c.options.strategy}`, async () => {
      const model = tinyModel(c.preset);
      const backend = await createReferenceBackend(model);
      const loaded = { backend } as LoadedModel;
      const plan = { strategy: resolveStrategy(model.config, c.options, c.n) } as RunPlan;
      const ids = tokens(c.n, 11, 3, 300);
      const whole = await readDocument(loaded, plan, ids);
      // Blocks of about 40 tokens: several feeds, each ending on a step boundary.
      const blocks = feedBlocks(plan.strategy, 40)!;
      assert.ok(blocks.first < c.n && blocks.every < c.n, 'the prompt takes several feeds');
      let progress = 0;
      const parts = await readDocument(loaded, plan, streamed(ids), { blockTokens: 40, onProgress: (p) => (progress = p.done) });
      assert.equal(progress, c.n, 'progress counts across the feeds');
      const a = whole.session.snapshot();
      const b = parts.session.snapshot();
      assert.equal(b.fedTokens, a.fedTokens);
      assert.deepEqual(b.strategyState, a.strategyState);
      assert.equal(b.sequence.rows, a.sequence.rows);
      assert.deepEqual(b.sequence.keys, a.sequence.keys);
      assert.deepEqual(b.sequence.values, a.sequence.values);
      const q = Int32Array.of(5, 6, 7);
      assert.deepEqual(await parts.session.feed(q), await whole.session.feed(q));
    });
  }

  it('is gathered into one feed by strategies that read a prompt at once (full)', async () => {
    const model = tinyModel('tiny');
    const backend = await createReferenceBackend(model);
    const plan = { strategy: resolveStrategy(model.config, { strategy: 'full' }, 100) } as RunPlan;
    assert.equal(feedBlocks(plan.strategy), null);
    const ids = tokens(100, 5, 3, 300);
    const a = await readDocument({ backend } as LoadedModel, plan, ids);
    const b = await readDocument({ backend } as LoadedModel, plan, streamed(ids));
    assert.deepEqual(b.session.snapshot().sequence.keys, a.session.snapshot().sequence.keys);
  });
});

describe('DocumentTokens', () => {
  const dir = scratchDir('doc-tokens');
  writeTinyTokenizer(dir);
  const texts = Array.from({ length: 40 }, (_, i) => `Line ${i} of the first file, with some words.\n`);
  const segments = (changed = false): Segment[] => [
    ...texts.map((text) => ({ text, source: { path: 'a.txt' } })),
    { text: changed ? 'another ending' : 'the end', source: { path: 'b.txt' } },
  ];

  it('counts, hashes and locates the ids; past the hold limit keeps none and encodes again, the same ids', async () => {
    const tokenizer = await loadTokenizer(dir);
    const held = await DocumentTokens.encode(tokenizer, () => segments());
    const streamedDoc = await DocumentTokens.encode(tokenizer, () => segments(), { holdTokens: 10 });
    assert.equal(held.isHeld, true);
    assert.equal(streamedDoc.isHeld, false);
    const all = await held.all();
    assert.equal(all.length, held.count);
    assert.deepEqual(streamedDoc.digest, digestTokens(all));
    assert.deepEqual(await streamedDoc.all(), all);
    const pieces: Int32Array[] = [];
    for await (const p of streamedDoc.pieces()) pieces.push(p);
    assert.equal(pieces.length, segments().length, 'one piece per segment: never the whole document at once');
    assert.equal(streamedDoc.sourceEnds.get('b.txt'), held.count);
    assert.ok(streamedDoc.sourceEnds.get('a.txt')! < held.count);
  });

  it('a document encoded before is not encoded again (the token memo): the same count, digest and source ends, the ids encoded again only when read', async () => {
    const tokenizer = await loadTokenizer(dir);
    const cacheDir = scratchDir('token-memo');
    const memo = new TokenMemo(join(cacheDir, 'document-tokens'), cacheDir);
    const first = await DocumentTokens.encode(tokenizer, () => segments(), { memo });
    assert.equal(first.isHeld, true, 'the first encoding holds its ids as before');
    let encodings = 0;
    const counting = new Proxy(tokenizer, {
      get: (t, k) => (k === 'encodeSegmentStream' ? (...a: Parameters<typeof t.encodeSegmentStream>) => (encodings++, t.encodeSegmentStream(...a)) : Reflect.get(t, k)),
    });
    const again = await DocumentTokens.encode(counting, () => segments(), { memo });
    assert.equal(encodings, 0, 'nothing encoded');
    assert.deepEqual([again.count, again.digest, [...again.sourceEnds]], [first.count, first.digest, [...first.sourceEnds]]);
    assert.equal(again.isHeld, false);
    assert.deepEqual(await again.all(), await first.all(), 'read, the ids are encoded again and match');
    assert.equal(encodings, 1);
    const changed = await DocumentTokens.encode(counting, () => segments(true), { memo });
    assert.equal(encodings, 2, 'other text is encoded');
    assert.notEqual(changed.digest.sha256, first.digest.sha256);
    const damaged = readdirSync(join(cacheDir, 'document-tokens'));
    for (const f of damaged) writeFileSync(join(cacheDir, 'document-tokens', f), '{"format":1,"count":"x"}');
    assert.deepEqual((await DocumentTokens.encode(counting, () => segments(), { memo })).digest, first.digest, 'a damaged record is encoded again');
    assert.equal(encodings, 3);
  });

  it('inputs that changed between the encodings are an input error', async () => {
    const tokenizer = await loadTokenizer(dir);
    let reading = 0;
    const doc = await DocumentTokens.encode(tokenizer, () => segments(reading++ > 0), { holdTokens: 10 });
    await assert.rejects(doc.all(), (e: Error & { exitCode?: number }) => e.exitCode === 3 && /the inputs changed while ctx read them/.test(e.message));
  });
});
