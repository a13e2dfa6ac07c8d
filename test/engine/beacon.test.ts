// Beacon strategies beyond the goldens: the v1 masks and positions for all three schemes (checked
// against the scheme table in ALGORITHMS.md §1.4), memory sizes, the ratio rule, and a v3 run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Sequence, StepRequest } from '../../src/backend/contract.js';
import { createReferenceBackend } from '../../src/backend/reference/index.js';
import { ropeTable } from '../../src/engine/rope.js';
import { BeaconAppendStrategy } from '../../src/engine/strategies/beacon-append.js';
import { beaconMaxTokens, chooseRatio } from '../../src/engine/strategies/beacon-ratio.js';
import { Session } from '../../src/engine/session.js';
import { resolveStrategy } from '../../src/engine/strategies/index.js';
import type { BeaconConfig } from '../../src/model/config.js';
import { tinyModel, tokens } from '../helpers/models.js';

/** Wraps a sequence and records every request. */
function recording(seq: Sequence): { seq: Sequence; requests: StepRequest[] } {
  const requests: StepRequest[] = [];
  const wrapped: Sequence = {
    get length() {
      return seq.length;
    },
    step: (r) => {
      requests.push(r);
      return seq.step(r);
    },
    retain: (rows) => seq.retain(rows),
    importRows: (source, rows) => seq.importRows(source, rows),
    kvBytes: () => seq.kvBytes(),
    snapshot: () => seq.snapshot(),
    restore: (s) => seq.restore(s),
    dispose: () => seq.dispose(),
  };
  return { seq: wrapped, requests };
}

describe('beacon v1 (append)', () => {
  for (const attn of ['step-expansion', 'segmentation', 'full-coverage'] as const) {
    it(`${attn}: beacon j sees memory, its raw rows and itself, at the scheme's position`, async () => {
      const model = tinyModel('tiny-beacon-v1', { beacon: { version: 'v1', window: 8, stride: 4, ratios: [2], attn } });
      const backend = await createReferenceBackend(model);
      const rec = recording(backend.newSequence());
      const W = 8, S = 4, r = 2;
      const strat = new BeaconAppendStrategy(
        { seq: rec.seq, newSequence: () => backend.newSequence(), config: model.config, rope: () => ropeTable(model.config, null, 0) },
        { window: W, stride: S, ratio: r, attn, attendPrev: true, maxTokens: 1e9 },
      );
      await strat.feed(tokens(20));
      // Steps: 8 raw (window full) → Mb=2, raw cache 4; 4 raw → Mb=4; 4 raw → Mb=6; 4 raw → Mb=8.
      assert.equal(rec.requests.length, 4);
      assert.deepEqual(strat.stats(), { totalRows: 12, consumed: 20, beacon_kv: 8, raw_kv: 4, total_kv: 12, ratio: 2 });
      const req = rec.requests[1]; // memory Mb = 2, raw cache 4 rows, 4 new raw, 2 beacons
      const Mb = 2, M = 6, take = 4;
      assert.equal(req.tokens.length, take + S / r);
      assert.deepEqual([...req.beacon!], [0, 0, 0, 0, 1, 1]);
      assert.equal(req.mask.kind, 'ranges');
      const ranges = (req.mask as { ranges: Int32Array }).ranges;
      const seen = (row: number) => {
        const keys: number[] = [];
        for (let k = 0; k < 3; k++) for (let j = ranges[6 * row + 2 * k]; j < ranges[6 * row + 2 * k + 1]; j++) keys.push(j);
        return keys;
      };
      const upto = (n: number) => Array.from({ length: n }, (_, i) => i);
      for (let i = 0; i < take; i++) {
        assert.deepEqual(seen(i), upto(M + i + 1), 'raw rows are causal and never see beacons');
        assert.equal(req.positions[i], M + i);
      }
      for (let j = 1; j <= S / r; j++) {
        const row = take + j - 1;
        const self = M + row;
        const raw = attn === 'step-expansion' ? upto(j * r) : attn === 'segmentation' ? upto(r).map((x) => x + (j - 1) * r) : upto(W);
        assert.deepEqual(seen(row), [...upto(Mb), ...raw.map((x) => Mb + x), self]);
        const pos = attn === 'step-expansion' ? Mb + j * r : attn === 'segmentation' ? Mb + r : Mb + W;
        assert.equal(req.positions[row], pos);
      }
      assert.deepEqual([...req.logitRows], [], 'no logits for intermediate steps');
      assert.deepEqual([...rec.requests[3].logitRows], [3], 'logits only for the last raw row of the feed');
    });
  }
});

describe('beacon v3 (interleave)', () => {
  it('inserts a beacon after every r raw tokens and keeps W/r rows per window', async () => {
    const model = tinyModel('tiny-beacon');
    const backend = await createReferenceBackend(model);
    const r = resolveStrategy(model.config, { strategy: 'beacon', beaconRatio: 4 }, 200);
    const s = new Session(backend, r);
    const logits = await s.feed(tokens(200), { allLogits: true });
    assert.equal(logits.length, 200 * model.config.vocabSize, 'one logit row per raw token');
    // W = 32: 6 full windows → 6 × 8 beacons; 8 raw tokens + 2 beacons open.
    assert.deepEqual(
      { beacon: s.stats().beacon_kv, raw: s.stats().raw_kv, rawTokens: s.stats().raw_tokens },
      { beacon: 48, raw: 10, rawTokens: 8 },
    );
  });

  it('chooses the smallest trained ratio whose reach covers the document (adapt)', () => {
    const b = { window: 32, stride: 32, ratios: [2, 4, 8], ratioMix: 'adapt-64' } as BeaconConfig;
    // P = 128: maxlen(r) = 96 r + 32 → 224, 416, 800.
    assert.equal(beaconMaxTokens(128, 32, 4), 416);
    assert.equal(chooseRatio(b, 128, 100).ratio, 2); // 164 ≤ 224
    assert.equal(chooseRatio(b, 128, 200).ratio, 4); // 264
    assert.equal(chooseRatio(b, 128, 700).ratio, 8); // 764
    const over = chooseRatio(b, 128, 5000);
    assert.equal(over.ratio, 8);
    assert.equal(over.fits, false);
    assert.equal(chooseRatio(b, 128, 5000, 64).maxTokens, 96 * 64 + 32);
  });
});
