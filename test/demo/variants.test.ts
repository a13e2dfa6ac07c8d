// The demo base's trained variants (models/needle-clex, needle-softmax, needle-lssa, needle-focus; made by
// models/recipes/variants):
//  1. ctx runs each exactly as the recipe's PyTorch forward does: fixtures/variants/<variant>.json holds
//     the recipe's cases (check_variants.py: prompt, greedy ids, the prefill's last row and each decode
//     step's logits), replayed here on the cpu backend with the strategy ctx picks for the model
//     (CLEX: full with its own scaling, crossing a change of t; LSSA also as LSSAR p = 3 and 15; focus).
//  2. each variant still answers from documents past the base's 256-token window: fixed (seeded) documents,
//     each threshold under the count they give today (in brackets), so a broken strategy fails and a
//     change of rounding does not.
// A variant folder that is absent is skipped with the reason.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { efficacyStrategy } from '../../src/demo/efficacy.js';
import { makeNeedleDocument } from '../../src/demo/index.js';
import { askAbout } from '../../src/demo/needle.js';
import { Conversation } from '../../src/engine/conversation.js';
import { Session } from '../../src/engine/session.js';
import { resolveStrategy, type StrategyName } from '../../src/engine/strategies/index.js';
import { argmaxRows, maxAbsDiff } from '../backend/cpu/helpers.js';
import { loadOnCpu, type Loaded } from './helpers.js';

// Counts these documents gave when the variants were trained (the thresholds are one under).
const CLEX4 = 5;
const CLEX16 = 3;

const repoPath = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const folder = (name: string) => repoPath(`models/${name}`);
const absent = (name: string) => (existsSync(`${folder(name)}/model.safetensors`) ? false : `models/${name} is not there (models/recipes/variants/train_*.py makes it)`);

/** One case of fixtures/variants/<variant>.json (written by check_variants.py). */
interface FixtureCase {
  name: string;
  /** full-past-window: plain full attention past the window, as bench/efficacy runs it (the CLI refuses it). */
  strategy: 'full' | 'focus' | 'full-past-window';
  softplus_reweight: null | 'off' | number;
  input_ids: number[];
  expected_greedy_ids: number[];
  atol: number;
  last_prefill_logits: number[];
  step_logits: number[][];
}
interface Fixture {
  model: string;
  model_sha256: string;
  cases: FixtureCase[];
}
const fixture = (variant: string) => JSON.parse(readFileSync(repoPath(`fixtures/variants/${variant}.json`), 'utf8')) as Fixture;

/** Replays a recipe case on ctx's cpu backend: greedy ids and the largest |Δlogit| over the checked rows. */
async function replay(m: Loaded, c: FixtureCase): Promise<{ ids: number[]; maxDiff: number }> {
  const n = c.input_ids.length + c.step_logits.length;
  const strategy = c.strategy === 'full-past-window' ? efficacyStrategy(m.backend, 'full', n) : resolveStrategy(m.model.config, { strategy: c.strategy }, c.input_ids.length, c.step_logits.length);
  const session = new Session(m.backend, strategy);
  try {
    const last = await session.feed(Int32Array.from(c.input_ids));
    let maxDiff = maxAbsDiff(last, Float32Array.from(c.last_prefill_logits));
    const V = last.length;
    const ids = [argmaxRows(last, V)[0]];
    for (let i = 0; i < c.step_logits.length; i++) {
      const step = await session.feed(Int32Array.of(ids[i]), { decoding: true });
      maxDiff = Math.max(maxDiff, maxAbsDiff(step, Float32Array.from(c.step_logits[i])));
      if (i + 1 < c.step_logits.length) ids.push(argmaxRows(step, V)[0]);
    }
    return { ids, maxDiff };
  } finally {
    session.dispose();
  }
}

const load = (name: string, o: { softplusReweight?: 'off' | number } = {}) => loadOnCpu(folder(name), o);

/** Reads documents i = 0..n−1 of `tokens` tokens (needle depth (i + 0.5)/n, seed 300 + i) with strategy `s`. */
async function correct(m: Loaded, s: StrategyName, tokens: number, n: number): Promise<number> {
  let right = 0;
  for (let i = 0; i < n; i++) {
    const doc = makeNeedleDocument({ tokens, depth: (i + 0.5) / n, seed: 300 + i });
    const { question, answer } = askAbout(doc, 0);
    const conv = new Conversation(m.tokenizer);
    const prompt = Int32Array.from([...conv.documentPrefix(), ...m.tokenizer.encode(doc.text), ...conv.firstQuestion(question)]);
    const session = new Session(m.backend, resolveStrategy(m.model.config, { strategy: s }, prompt.length, 8));
    try {
      const logits = await session.feed(prompt);
      if (m.tokenizer.decode([argmaxRows(logits, logits.length)[0]]).trim() === answer) right++;
    } finally {
      session.dispose();
    }
  }
  return right;
}

for (const variant of ['clex', 'softmax', 'lssa', 'focus']) {
  const name = `needle-${variant}`;
  describe(`${name}: ctx runs it as the recipe does (fixtures/variants/${variant}.json, cpu backend)`, { skip: absent(name) }, () => {
    if (absent(name)) return;
    const f = fixture(variant);
    it('the fixture was made from these weights', () => {
      const sha = createHash('sha256').update(readFileSync(`${folder(name)}/model.safetensors`)).digest('hex');
      assert.equal(f.model, `models/${name}`);
      assert.equal(sha, f.model_sha256, `models/${name} changed since its fixture: rerun models/recipes/variants/check_variants.py ${variant}`);
      assert.ok(f.cases.length >= 2);
    });
    // One backend per run-time setting (LSSA's cases come as LSSA, LSSAR p = 3 and p = 15).
    for (const reweight of [...new Set(f.cases.map((c) => c.softplus_reweight))]) {
      const cases = f.cases.filter((c) => c.softplus_reweight === reweight);
      describe(reweight === null ? 'as configured' : `--softplus-reweight ${reweight}`, () => {
        let m: Loaded;
        before(async () => (m = await load(name, reweight === null ? {} : { softplusReweight: reweight })));
        after(async () => m?.backend.dispose());
        for (const c of cases) {
          it(`${c.name}: ${c.input_ids.length} tokens + ${c.step_logits.length} steps, greedy ids equal, |Δlogit| ≤ ${c.atol}`, async () => {
            const { ids, maxDiff } = await replay(m, c);
            assert.deepEqual(ids, c.expected_greedy_ids);
            assert.ok(maxDiff <= c.atol, `max |Δlogit| ${maxDiff}`);
          });
        }
      });
    }
  });
}

describe('needle-clex answers past the window', { skip: absent('needle-clex') }, () => {
  let m: Loaded;
  before(async () => (m = await load('needle-clex')));
  after(async () => m?.backend.dispose());

  it('full runs its own CLEX: t = 4 at 4× the window, reach 16 × 256', () => {
    const r = resolveStrategy(m.model.config, { strategy: 'full' }, 1020);
    assert.ok(r.name === 'full' && r.rope?.type === 'clex' && r.capacity === 4096, JSON.stringify(r));
  });

  it(`finds the needle at 4× the window [${CLEX4}/5] and at 16× [${CLEX16}/3]`, async () => {
    const at4 = await correct(m, 'full', 1016, 5);
    const at16 = await correct(m, 'full', 4088, 3);
    assert.ok(at4 >= CLEX4 - 1 && at16 >= CLEX16 - 1, `needle-clex: ${at4}/5 at 4×, ${at16}/3 at 16×`);
  });
});
