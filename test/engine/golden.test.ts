// Every golden case under ../shared/golden must pass on the reference backend: identical greedy
// ids, max |Δlogit| ≤ 1e-3, identical beacon memory sizes and chosen ratio.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findGoldenCases, formatGoldenResult, runGoldenCase } from '../../src/engine/golden.js';
import { SHARED } from '../helpers/models.js';

const root = join(SHARED, 'golden');
const absent = existsSync(root) ? false : `no golden vectors at ${root} (../shared is absent)`;

describe('golden cases on the reference backend', { skip: absent }, () => {
  const cases = absent ? [] : findGoldenCases(root);
  it('finds the cases', () => assert.ok(cases.length >= 9, `found ${cases.length} cases`));
  for (const dir of cases) {
    it(dir.split('/').pop()!, async () => {
      const r = await runGoldenCase(root, dir, 'reference');
      assert.ok(r.passed, formatGoldenResult(r));
      // Independent float32 implementations agree to ~1e-4 here; anything near 1e-3 is a bug.
      assert.ok(Math.max(r.maxDiffPrefill, r.maxDiffSteps) < 2e-4, formatGoldenResult(r));
    });
  }
});
