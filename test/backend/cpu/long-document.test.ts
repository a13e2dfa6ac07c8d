// A 20K-token document streams through `beacon` and `select` on a small random model, each in its
// own process, whose peak RSS must stay under a stated bound.
//
// The bound: 300 MB (measured: about 190 MB for either). What the process holds: Node + tsx + ONNX
// Runtime (~120 MB after loading), the model (under 1 MB), KV storage (select keeps every row:
// 20,480 rows × 2 layers × (K + V) × 32 floats ≈ 10 MB; beacon keeps about n/r rows + one window),
// and a step's scratch: one window's or chunk's activations, and attention scores, which the
// attention driver caps at 16 MB per call by tiling the queries.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tinyModelDir } from '../../helpers/models.js';
import { testCacheDir } from './helpers.js';

const TOKENS = 20_480;
const BOUND = 300 * 1024 * 1024;

function run(strategy: string): Record<string, number> {
  const dir = tinyModelDir('tiny-beacon', {
    vocab: 512, hidden: 64, intermediate: 192, maxPositions: 4096,
    beacon: { version: 'v3', window: 256, ratios: [8, 16, 32], ratioMix: 'adapt-1024' },
  });
  const child = join(import.meta.dirname, './long-document.child.ts');
  const r = spawnSync(process.execPath, ['--import', 'tsx', child, dir, testCacheDir(), strategy, String(TOKENS)], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe(`a ${TOKENS}-token document on cpu stays under ${BOUND / 2 ** 20} MB`, () => {
  it('beacon (v3, r chosen for the length)', (t) => {
    const r = run('beacon');
    t.diagnostic(JSON.stringify(r));
    assert.equal(r.consumed, TOKENS + 8);
    // Memory holds about n/r beacon rows plus the unfinished window, far fewer than n.
    assert.ok(r.totalRows < TOKENS / 4, `${r.totalRows} rows kept`);
    assert.ok(r.peakRss <= BOUND, `peak RSS ${(r.peakRss / 2 ** 20).toFixed(0)} MB`);
  });

  it('select (init 32 + top 256 + local 128, every row kept)', (t) => {
    const r = run('select');
    t.diagnostic(JSON.stringify(r));
    assert.equal(r.totalRows, TOKENS + 8);
    assert.ok(r.peakRss <= BOUND, `peak RSS ${(r.peakRss / 2 ** 20).toFixed(0)} MB`);
  });
});
