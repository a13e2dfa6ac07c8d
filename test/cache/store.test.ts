// The session cache on disk: a saved session loads back bit for bit and continues with identical
// logits; damage anywhere is caught by the checksum and the entry is discarded; writes are atomic
// (a failing or interrupted write leaves no file and keeps what was there); LRU eviction.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createReferenceBackend } from '../../src/backend/reference/index.js';
import type { EntryMeta } from '../../src/cache/format.js';
import { canonicalJson, digestTokens, sessionKey, strategyKey, TokenHasher } from '../../src/cache/key.js';
import { SessionCache } from '../../src/cache/store.js';
import { ownerTag } from '../../src/model/owner.js';
import { Session } from '../../src/engine/session.js';
import { resolveStrategy, type StrategyOptions } from '../../src/engine/strategies/index.js';
import { scratchDir } from '../helpers/fixtures.js';
import { tinyModel, tokens } from '../helpers/models.js';

const META: EntryMeta = { inputs: ['doc.txt'], model: 'tiny', modelDir: '/m', strategy: 's', backend: 'reference', numeric: 'f32', tokens: 100 };

async function readSession(preset: string, opts: StrategyOptions, n = 100, seed = 4) {
  const model = tinyModel(preset);
  const backend = await createReferenceBackend(model);
  const resolved = resolveStrategy(model.config, opts, n + 10);
  const session = new Session(backend, resolved);
  await session.feed(tokens(n, seed));
  return { model, backend, resolved, session };
}

/** Names in the cache folder other than finished entries (temp files left behind). */
function leftovers(dir: string): string[] {
  return existsSync(dir) ? readdirSync(dir).filter((n) => !n.endsWith('.ctxs')) : [];
}

describe('session cache: format', () => {
  const cases: Array<[string, string, StrategyOptions]> = [
    ['select with a reuse cache', 'tiny', { strategy: 'select', nInit: 4, topK: 16, nLocal: 16, reuseCosine: 0.5 }],
    ['beacon v3 (strategy state)', 'tiny-beacon', { strategy: 'beacon' }],
  ];
  for (const [label, preset, opts] of cases) {
    it(`${label}: saved, loaded and restored, it continues with identical logits`, async () => {
      const { backend, resolved, session } = await readSession(preset, opts);
      const cache = new SessionCache(scratchDir('cache-format'));
      const saved = await cache.save('a'.repeat(64), META, session.snapshot(), session.backend.model.config.headDim);
      assert.equal(saved.kind, 'saved');
      const loaded = await cache.load('a'.repeat(64));
      assert.equal(loaded.kind, 'hit');
      if (loaded.kind !== 'hit') return;
      assert.deepEqual(loaded.header.meta, META);
      const restored = Session.restore(backend, { ...loaded.session, resolved });
      assert.deepEqual(restored.stats(), session.stats());
      assert.equal(restored.fedTokens, session.fedTokens);
      for (const t of tokens(6, 9)) {
        const a = await session.feed(Int32Array.of(t), { decoding: true });
        const b = await restored.feed(Int32Array.of(t), { decoding: true });
        assert.deepEqual(b, a);
      }
    });
  }

  it('a flipped bit anywhere, or a cut-off file, is caught and the entry removed', async () => {
    const { session } = await readSession('tiny-beacon', { strategy: 'beacon' }, 60);
    const dir = scratchDir('cache-corrupt');
    const cache = new SessionCache(dir);
    const key = 'b'.repeat(64);
    await cache.save(key, META, session.snapshot(), session.backend.model.config.headDim);
    const good = readFileSync(cache.pathOf(key));
    const damages: Array<[string, Buffer]> = [
      ['header', Buffer.from(good.toString('latin1').replace('"tiny"', '"tinY"'), 'latin1')],
      ['payload', Buffer.from(good.map((b, i) => (i === good.length - 100 ? b ^ 1 : b)))],
      ['truncated', good.subarray(0, good.length - 7)],
      ['not ours', Buffer.from('hello, this is not a session file at all, just text that is long enough')],
    ];
    for (const [what, bytes] of damages) {
      writeFileSync(cache.pathOf(key), bytes);
      const r = await cache.load(key);
      assert.equal(r.kind, 'discarded', what);
      if (r.kind === 'discarded') assert.match(r.message, new RegExp(`^${cache.pathOf(key)}: discarded a corrupt cache entry \\(.+\\)`), what);
      assert.equal(existsSync(cache.pathOf(key)), false, `${what}: the damaged entry is removed`);
    }
    assert.equal((await cache.load(key)).kind, 'miss');
  });
});

describe('session cache: key', () => {
  it('covers prompt tokens, model, strategy parameters and backend, not planning numbers', async () => {
    const model = tinyModel('tiny-beacon');
    const base = {
      prefix: digestTokens(tokens(3, 7)),
      document: digestTokens(tokens(50, 1)),
      modelFingerprint: await model.weights.fingerprint(),
      modelConfig: model.config,
      strategy: resolveStrategy(model.config, { strategy: 'beacon' }, 300),
      backend: 'reference',
      numeric: 'f32',
    };
    const k = sessionKey(base);
    assert.match(k, /^[0-9a-f]{64}$/);
    assert.equal(sessionKey({ ...base, document: digestTokens(tokens(50, 1)) }), k, 'same inputs, same key');
    // The same ratio chosen for a slightly longer planned length (a longer question): same state.
    const longer = resolveStrategy(model.config, { strategy: 'beacon' }, 310);
    assert.equal(longer.name === 'beacon' && longer.ratio, base.strategy.name === 'beacon' && base.strategy.ratio);
    assert.equal(sessionKey({ ...base, strategy: longer }), k);
    const changed: Array<[string, Partial<typeof base>]> = [
      ['one token', { document: digestTokens(Int32Array.from(tokens(50, 1).map((t, i) => (i === 49 ? t + 1 : t)))) }],
      ['one more token', { document: digestTokens(tokens(51, 1)) }],
      ['a token moved from the document to the prefix', { prefix: digestTokens(Int32Array.from([...tokens(3, 7), tokens(50, 1)[0]!])), document: digestTokens(tokens(50, 1).subarray(1)) }],
      ['the prefix', { prefix: digestTokens(tokens(3, 8)) }],
      ['weights', { modelFingerprint: '0'.repeat(64) }],
      ['config', { modelConfig: { ...model.config, ropeTheta: 1234 } }],
      ['strategy ratio', { strategy: resolveStrategy(model.config, { strategy: 'beacon', beaconRatio: 2 }, 300) }],
      ['backend', { backend: 'cpu' }],
      ['numeric mode', { numeric: 'q8' }],
    ];
    for (const [what, patch] of changed) assert.notEqual(sessionKey({ ...base, ...patch }), k, what);
    assert.equal('ratioChoice' in strategyKey(base.strategy), false);

    // select: the reuse cosine acts only while answering (the read keeps its selections whatever it
    // is), so it is not in the key; the prefill chunk shapes the selections, so it is.
    const select = (o: { selectReuse?: number | null; chunk?: number }) =>
      sessionKey({ ...base, strategy: resolveStrategy(model.config, { strategy: 'select', reuseCosine: o.selectReuse, chunk: o.chunk }, 300) });
    const s0 = select({});
    assert.equal(select({ selectReuse: 0.5 }), s0, 'another reuse cosine');
    assert.equal(select({ selectReuse: null }), s0, 'reuse off');
    assert.notEqual(select({ chunk: 8 }), s0, 'another prefill chunk'); // tiny's default: min(chunk, local 16)

    // Hashed as they stream: pieces of any size give the digest of the whole.
    const h = new TokenHasher();
    const all = tokens(50, 1);
    for (const [a, b] of [[0, 7], [7, 7], [7, 30], [30, 50]]) h.update(all.subarray(a, b));
    assert.deepEqual(h.digest(), digestTokens(all));
    assert.equal(canonicalJson({ b: 1, a: { d: 2, c: 3 } }), '{"a":{"c":3,"d":2},"b":1}');
  });
});

describe('session cache: writes and eviction', () => {
  it('a write that fails (disk full) leaves no temp file and the previous entries as they were', async () => {
    const { session } = await readSession('tiny', { strategy: 'full' }, 40);
    const dir = scratchDir('cache-enospc');
    await new SessionCache(dir).save('c'.repeat(64), META, session.snapshot(), session.backend.model.config.headDim);
    const before = readFileSync(join(dir, `${'c'.repeat(64)}.ctxs`));
    const failing = new SessionCache(dir, { failWritesWith: 'ENOSPC' });
    for (const key of ['c'.repeat(64), 'd'.repeat(64)]) {
      const r = await failing.save(key, META, session.snapshot(), session.backend.model.config.headDim);
      assert.equal(r.kind, 'failed');
      if (r.kind === 'failed') assert.equal(r.message, `could not save the document to the cache (${dir}: no space left on device); the cache is unchanged`);
    }
    assert.deepEqual(leftovers(dir), []);
    assert.deepEqual(readdirSync(dir), [`${'c'.repeat(64)}.ctxs`]);
    assert.deepEqual(readFileSync(join(dir, `${'c'.repeat(64)}.ctxs`)), before);
  });

  it('Ctrl-C while saving removes the temp file and lets the interruption through', async () => {
    const { session } = await readSession('tiny', { strategy: 'full' }, 40);
    const dir = scratchDir('cache-abort');
    const controller = new AbortController();
    controller.abort(new Error('interrupted'));
    await assert.rejects(new SessionCache(dir).save('e'.repeat(64), META, session.snapshot(), session.backend.model.config.headDim, controller.signal), /interrupted/);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('evicts least recently used entries beyond the size cap, never the one just written; a hit counts as a use', async () => {
    const { session } = await readSession('tiny', { strategy: 'full' }, 40);
    const dir = scratchDir('cache-evict');
    const probe = new SessionCache(dir);
    await probe.save('0'.repeat(64), META, session.snapshot(), session.backend.model.config.headDim);
    const size = statSync(probe.pathOf('0'.repeat(64))).size;
    const cache = new SessionCache(dir, { maxBytes: Math.floor(size * 2.5) });
    const t = Date.now() / 1000;
    await cache.save('1'.repeat(64), META, session.snapshot(), session.backend.model.config.headDim);
    utimesSync(cache.pathOf('0'.repeat(64)), t - 300, t - 300); // oldest
    utimesSync(cache.pathOf('1'.repeat(64)), t - 200, t - 200);
    assert.equal((await cache.load('0'.repeat(64))).kind, 'hit'); // now the most recent
    const r = await cache.save('2'.repeat(64), META, session.snapshot(), session.backend.model.config.headDim);
    assert.deepEqual(r.kind === 'saved' && r.evicted, 1);
    assert.deepEqual((await cache.list()).map((e) => e.id[0]).sort(), ['0', '2'], '1 went: the least recently used');

    // A single session larger than the cap is not written at all.
    const tiny = new SessionCache(dir, { maxBytes: 100 });
    const skipped = await tiny.save('3'.repeat(64), META, session.snapshot(), session.backend.model.config.headDim);
    assert.equal(skipped.kind, 'skipped');
    assert.equal(existsSync(tiny.pathOf('3'.repeat(64))), false);
  });

  it('removes temp files of runs that are gone, keeps those of live ones (counted toward the cap)', async () => {
    const { session } = await readSession('tiny', { strategy: 'full' }, 20);
    const dir = scratchDir('cache-stale');
    const cache = new SessionCache(dir);
    await cache.save('4'.repeat(64), META, session.snapshot(), session.backend.model.config.headDim);
    const key16 = '5'.repeat(16);
    const dead = join(dir, `.tmp-${key16}-999999999.1-aaaaaaaa`); // a killed run, just now
    const live = join(dir, `.tmp-${key16}-${ownerTag()}-bbbbbbbb`); // this process: a save in progress
    const legacy = join(dir, '.tmp-dead-1'); // an older ctx's name, two hours old
    for (const f of [dead, live, legacy]) writeFileSync(f, 'x');
    utimesSync(legacy, Date.now() / 1000 - 7200, Date.now() / 1000 - 7200);
    await cache.evict('');
    assert.deepEqual(leftovers(dir), [live.slice(dir.length + 1)]);
  });
});
