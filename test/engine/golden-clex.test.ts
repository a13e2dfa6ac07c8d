// The CLEX cases of ../shared/golden-seeds (DAMO-NLP-SG/CLEX's own code on random-weight Llama
// models, t from 1 to 16, several crossing a change of t while decoding) through runGoldenCase on
// the reference and cpu backends, and on the native backend's host kernels when the addon is built:
// identical greedy ids, logits within each case's suggested_atol, the ODE's f(t) within its rtol and
// the scale factor of every call as the reference chose it.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { nativeAvailable } from '../../src/backend/native/index.js';
import { findGoldenCases, formatGoldenResult, loadGoldenCase, runGoldenCase } from '../../src/engine/golden.js';
import { testCacheDir } from '../backend/cpu/helpers.js';
import { SHARED } from '../helpers/models.js';

const ROOT = join(SHARED, 'golden-seeds');
const absent = existsSync(ROOT) ? false : `no golden seeds at ${ROOT} (../shared is absent)`;
// runGoldenCase builds its backend through createBackend: the cpu backend's converted weights go to a temporary folder.
process.env.CTX_CACHE_DIR = testCacheDir();
const native = nativeAvailable();

describe('CLEX golden cases', { skip: absent }, () => {
  const dirs = absent ? [] : findGoldenCases(ROOT).filter((d) => loadGoldenCase(d).kind === 'clex');
  it('finds the four clex cases', () => assert.equal(dirs.length, 4));
  const backends = [['reference', false], ['cpu', false], ['cuda', native.available ? false : `native addon unavailable: ${native.reason}`]] as const;
  for (const [backend, skip] of backends) {
    for (const dir of dirs) {
      it(`${dir.split('/').pop()} on ${backend === 'cuda' ? 'the native backend (host kernels)' : backend}`, { skip }, async (t) => {
        const host = process.env.CTX_CUDA_HOST;
        if (backend === 'cuda') process.env.CTX_CUDA_HOST = '1';
        try {
          const r = await runGoldenCase(ROOT, dir, backend);
          t.diagnostic(formatGoldenResult(r));
          assert.ok(r.passed, formatGoldenResult(r));
        } finally {
          if (host === undefined) delete process.env.CTX_CUDA_HOST;
          else process.env.CTX_CUDA_HOST = host;
        }
      });
    }
  }
});
