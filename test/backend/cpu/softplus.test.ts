// Softplus attention on the cpu backend against the reference backend (the oracle) on tiny random
// softplus models: every strategy through the engine (full, stream, select, beacon v3 and v1, focus), LSSA
// and LSSAR with p = 3 and p = 15.
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import type { Backend } from '../../../src/backend/contract.js';
import type { SoftplusAttention } from '../../../src/model/softplus-config.js';
import { tinyModel, tokens } from '../../helpers/models.js';
import { bothBackends, runDiff, runStrategy } from './helpers.js';

const LSSA: SoftplusAttention = { scale: 'log_head_dim_x_log_n', reweight: null };
const lssar = (p: number): SoftplusAttention => ({ scale: 'log_head_dim_x_log_n', reweight: { p, offset: 1, noOffsetFirstRows: 3 } });

const disposers: Backend[] = [];
after(async () => {
  for (const b of disposers) await b.dispose();
});

describe('cpu vs reference: softplus attention under every strategy', () => {
  // The reference computes the weights in float64, the cpu graph in float32. p = 15 multiplies a
  // relative error ε of a weight by about 15 (SOFTPLUS.md §4), hence a looser bound there.
  const tol = (sp: SoftplusAttention) => (sp.reweight && sp.reweight.p > 3 ? 1e-3 : 1e-4);
  const cases: Array<[string, string, object, object, number, number, number?]> = [
    // name, preset, model overrides, strategy options, document length, decode steps, feed size
    ['full, LSSA', 'tiny', { maxPositions: 512, softplus: LSSA }, { strategy: 'full', chunk: 64 }, 300, 10],
    ['full, LSSAR p=3, document in 3 calls', 'tiny', { maxPositions: 512, seed: 5, softplus: lssar(3) }, { strategy: 'full', chunk: 48 }, 200, 6, 70],
    ['full, LSSAR p=15', 'tiny', { maxPositions: 512, seed: 2, softplus: lssar(15) }, { strategy: 'full', chunk: 64 }, 300, 10],
    ['stream (sink 4 + recent 60), LSSAR p=15', 'tiny', { softplus: lssar(15) }, { strategy: 'stream', sink: 4, recent: 60, chunk: 24 }, 300, 10],
    ['stream (sink 4 + recent 60), LSSA', 'tiny', { softplus: LSSA }, { strategy: 'stream', sink: 4, recent: 60, chunk: 24 }, 300, 10],
    ['select with reuse, LSSAR p=15', 'tiny', { maxPositions: 256, seed: 9, softplus: lssar(15) }, { strategy: 'select', nInit: 4, topK: 32, nLocal: 16, chunk: 16, reuseCosine: 0.5 }, 260, 12],
    ['select, LSSAR p=3', 'tiny', { maxPositions: 256, softplus: lssar(3) }, { strategy: 'select', nInit: 8, topK: 24, nLocal: 16, chunk: 16, reuseCosine: null }, 300, 10],
    ['beacon v3 interleave, LSSAR p=15', 'tiny-beacon', { softplus: lssar(15) }, { strategy: 'beacon' }, 400, 10],
    ['beacon v1 append step-expansion (ranges masks), LSSAR p=3', 'tiny-beacon-v1', { softplus: lssar(3) }, { strategy: 'beacon' }, 300, 10],
    ['focus (FocusLLM), LSSAR p=15', 'tiny-focus', { softplus: lssar(15) }, { strategy: 'focus' }, 300, 8],
    ['beacon v1 segmentation, LSSA', 'tiny-beacon-v1', { softplus: LSSA, beacon: { version: 'v1', window: 32, stride: 32, ratios: [8], attn: 'segmentation' } }, { strategy: 'beacon' }, 200, 8],
  ];
  for (const [name, preset, overrides, opts, n, decode, feed] of cases) {
    it(name, async (t) => {
      const model = tinyModel(preset, overrides);
      assert.deepEqual(model.config.softplus, (overrides as { softplus: SoftplusAttention }).softplus);
      const { ref, cpu } = await bothBackends(model);
      disposers.push(ref, cpu);
      const doc = tokens(n, 3, 3, model.config.vocabSize);
      const a = await runStrategy(ref, opts, doc, decode, feed);
      const b = await runStrategy(cpu, opts, doc, decode, feed);
      const d = runDiff(a, b);
      t.diagnostic(`max |Δlogit| ${d.toExponential(2)}`);
      assert.ok(d <= tol(model.config.softplus!), `max |Δlogit| ${d}`);
      assert.deepEqual(b.greedy, a.greedy);
      assert.deepEqual(b.stats, a.stats);
    });
  }
});
