// The softplus cases of ../shared/golden-seeds (LSSA, LSSAR p = 15; the paper's equations in
// transformers' Qwen2) on the reference and cpu backends: identical greedy ids and max |Δlogit|
// within each case's tolerance.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findGoldenCases, formatGoldenResult, loadGoldenCase, runGoldenCase, unsupportedReason } from '../../src/engine/golden.js';
import { testCacheDir } from '../backend/cpu/helpers.js';
import { SHARED } from '../helpers/models.js';

const ROOT = join(SHARED, 'golden-seeds');
const absent = existsSync(ROOT) ? false : `no golden seeds at ${ROOT} (../shared is absent)`;
// runGoldenCase builds its backend through createBackend: the cpu backend's converted weights go to a temporary folder.
process.env.CTX_CACHE_DIR = testCacheDir();

describe('softplus golden cases', { skip: absent }, () => {
  const dirs = absent ? [] : findGoldenCases(ROOT).filter((d) => loadGoldenCase(d).kind === 'softplus');
  it('finds the three softplus cases, and the runner supports them', () => {
    assert.equal(dirs.length, 3);
    for (const d of dirs) assert.equal(unsupportedReason(loadGoldenCase(d)), null);
  });
  for (const backend of ['reference', 'cpu'] as const) {
    for (const dir of dirs) {
      const gc = loadGoldenCase(dir);
      it(`${gc.name} on ${backend}`, async (t) => {
        const r = await runGoldenCase(ROOT, dir, backend);
        t.diagnostic(formatGoldenResult(r));
        assert.equal(r.atol, gc.tolerance!.suggested_atol);
        assert.ok(r.greedyEqual, formatGoldenResult(r));
        assert.ok(r.passed, formatGoldenResult(r));
      });
    }
  }
});
