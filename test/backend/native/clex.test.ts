// CLEX on the native backend (host kernels): the model.clex_layer tensors stay on the host (the
// weight spec the addon loads lists none of them), and every strategy that feeds raw tokens matches
// the reference backend on a CLEX model with log_scale, t changing while decoding.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Backend } from '../../../src/backend/contract.js';
import { modelSpec } from '../../../src/backend/native/addon.js';
import { createNativeBackend, nativeAvailable } from '../../../src/backend/native/index.js';
import { createReferenceBackend } from '../../../src/backend/reference/index.js';
import { runDiff, runStrategy } from '../cpu/helpers.js';
import { tinyModel, tokens } from '../../helpers/models.js';

const native = nativeAvailable();
const skip = native.available ? false : `native addon unavailable: ${native.reason}`;
const model = tinyModel('tiny-clex', { clex: { maxFactor: 8, logScale: true } });

describe('native backend with CLEX', { skip }, () => {
  const backends: Backend[] = [];
  after(async () => {
    for (const b of backends) await b.dispose();
  });

  it('keeps the CLEX tensors off the device', () => {
    const spec = modelSpec(model, 'host', 'f32');
    assert.equal(spec.tensors.length, model.weights.names().length - 3);
    assert.ok(!Object.keys(spec.model).some((role) => role.startsWith('clex')));
  });

  const cases: Array<[string, object, number, number]> = [
    ['full: t 3, then 4 while decoding', { strategy: 'full', chunk: 40 }, 190, 6],
    ['select (t = 1, log factor of the ranks)', { strategy: 'select', nInit: 4, topK: 16, nLocal: 16, chunk: 16, reuseCosine: null }, 200, 6],
    ['stream', { strategy: 'stream', sink: 4, recent: 56, chunk: 24 }, 200, 6],
  ];
  for (const [name, opts, n, decode] of cases) {
    it(name, async () => {
      const ref = await createReferenceBackend(model);
      const host = await createNativeBackend(model, { device: 'host' });
      backends.push(host);
      const doc = tokens(n, 3, 3, model.config.vocabSize);
      const a = await runStrategy(ref, opts, doc, decode);
      const b = await runStrategy(host, opts, doc, decode);
      assert.ok(runDiff(a, b) <= 1e-4, `max |Δlogit| ${runDiff(a, b)}`);
      assert.deepEqual(b.greedy, a.greedy);
    });
  }
});
