// Every golden case under ../shared/golden must pass on the reference backend: identical greedy
// ids, max |Δlogit| ≤ 1e-3, identical beacon memory sizes and chosen ratio.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import {
  findGoldenCases,
  formatGoldenResult,
  loadGoldenCase,
  readExpectedTensor,
  runGoldenCase,
  GOLDEN_KINDS,
  SUPPORTED_GOLDEN_KINDS,
  unsupportedReason,
  type ClexCaseSettings,
  type SoftplusCaseSettings,
} from '../../src/engine/golden.js';
import { argmaxRows } from '../helpers/compare.js';
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

// ../shared/golden-seeds: the CLEX, softplus and FocusLLM cases. The loader reads and checks every
// one; kinds the engine does not run yet are reported as unsupported, never run half-way.
const seeds = join(SHARED, 'golden-seeds');
const seedsAbsent = existsSync(seeds) ? false : `no golden seeds at ${seeds} (../shared is absent)`;

describe('golden-seeds cases: loader', { skip: seedsAbsent }, () => {
  const dirs = seedsAbsent ? [] : findGoldenCases(seeds);
  it('reads all ten cases, with the kind-specific records their checks need', () => {
    const cases = dirs.map(loadGoldenCase);
    assert.deepEqual(
      cases.map((c) => c.kind).sort(),
      ['clex', 'clex', 'clex', 'clex', 'focusllm', 'focusllm', 'focusllm', 'softplus', 'softplus', 'softplus'],
    );
    for (const c of cases) {
      if (c.kind === 'clex') assert.equal((c.settings as unknown as ClexCaseSettings).scale_factor_steps.length, c.greedy_steps);
      if (c.kind === 'focusllm') assert.equal(c.focus!.chunks.length, c.focus!.chunk_number);
      if (c.kind === 'softplus') assert.equal((c.settings as unknown as SoftplusCaseSettings).attention_type, 'softplus');
    }
  });
  it('the expected tensors have the shapes case.json describes', () => {
    for (const dir of dirs) {
      const c = loadGoldenCase(dir);
      const prefill = readExpectedTensor(dir, 'prefill_logits');
      const steps = readExpectedTensor(dir, 'step_logits');
      const V = prefill.shape[1];
      assert.deepEqual(prefill.shape, [c.kind === 'focusllm' ? c.focus!.prefill_rows : c.n_input, V], c.name);
      assert.deepEqual(steps.shape, [c.greedy_steps, V], c.name);
      // expected_greedy_ids are the argmax of the recorded logits (id 0 from the prefill's last row).
      const rows = [...argmaxRows(prefill.data.subarray((prefill.shape[0] - 1) * V), V), ...argmaxRows(steps.data, V)];
      assert.deepEqual(rows.slice(0, c.greedy_steps), c.expected_greedy_ids, c.name);
    }
  });
  it('runs every case of ../shared/golden-seeds (golden-clex.test.ts, strategies/focus.test.ts, golden-softplus.test.ts)', () => {
    for (const dir of dirs) {
      const c = loadGoldenCase(dir);
      assert.equal(unsupportedReason(c), null, c.name);
    }
    assert.deepEqual([...SUPPORTED_GOLDEN_KINDS].sort(), [...GOLDEN_KINDS].sort());
  });
});

describe('golden case loader', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-golden-case-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const write = (c: Record<string, unknown>) => writeFileSync(join(dir, 'case.json'), JSON.stringify(c));
  const base = { name: 'x', kind: 'plain', model: 'models/x', n_input: 3, input_ids: [5, 6, 7], greedy_steps: 2, expected_greedy_ids: [1, 2] };
  it('accepts a plain case and fills n_input when absent', () => {
    write({ ...base, n_input: undefined });
    assert.equal(loadGoldenCase(dir).n_input, 3);
  });
  it('names the file and the field that is wrong', () => {
    write({ ...base, expected_greedy_ids: [1] });
    assert.throws(() => loadGoldenCase(dir), new RegExp(`${dir}/case.json: "expected_greedy_ids" must list greedy_steps \\(2\\) token ids`));
    write({ ...base, kind: 'clex', settings: { rope_scaling: { type: 'clex', max_factor: 4 } } });
    assert.throws(() => loadGoldenCase(dir), /"settings.rope_scaling" must be a clex scaling/);
    write({ ...base, kind: 'focusllm', settings: { local_window: 8, memory_stride: [4, 8], short_prompt_limit: 4096, tail_cap: 512, bos_id_prepended: 1 } });
    assert.throws(() => loadGoldenCase(dir), /memory_stride holding exactly one stride/);
    write({ ...base, kind: 'softplus', settings: { attention_type: 'softplus', softplus_scale: 's', softplus_qk_norm: true, softplus_reweight: null, variant: 'LSSAR' } });
    assert.throws(() => loadGoldenCase(dir), /"settings.variant" LSSAR disagrees with softplus_reweight/);
    writeFileSync(join(dir, 'case.json'), '{');
    assert.throws(() => loadGoldenCase(dir), new RegExp(`${dir}/case.json: `));
  });
  it('a kind it has never heard of is unsupported, not an error', () => {
    write({ ...base, kind: 'someday' });
    assert.equal(unsupportedReason(loadGoldenCase(dir)), 'unsupported kind someday');
  });
  it('runGoldenCase refuses an unsupported kind without opening its model', async () => {
    write({ ...base, kind: 'someday', model: 'models/none' });
    await assert.rejects(runGoldenCase(dir, dir, 'reference'), /: unsupported kind someday$/);
  });
});
