// FocusLLM's chunk plan (src/engine/strategies/focus-plan.ts): config keys, the threshold, chunks,
// tail, BOS checks, decode-step positions and the KV cost, by hand and against the chunk plan and
// memory sizes the official code recorded in every focusllm case of ../shared/golden-seeds.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { findGoldenCases, loadGoldenCase, type FocusCaseSettings } from '../../../src/engine/golden.js';
import { describeFocusPlan, focusCost, focusStep, planFocus } from '../../../src/engine/strategies/focus-plan.js';
import { parseFocusSettings, type FocusSettings } from '../../../src/model/focus-config.js';
import { SHARED } from '../../helpers/models.js';

const settings = (extra: Partial<FocusSettings> = {}): FocusSettings => ({ localWindow: 64, stride: 100, shortPromptLimit: 4096, tailCap: 512, bosId: 1, param: ['q', 'k', 'v', 'o'], ...extra });
/** A prompt of n ids ≥ 3 (no BOS anywhere), with chosen ids at chosen places. */
const prompt = (n: number, at: Record<number, number> = {}) => Int32Array.from({ length: n }, (_, i) => at[i] ?? 3 + (i % 50));

describe('FocusLLM plan', () => {
  it('below the threshold: plain attention over bos(prompt), no chunks', () => {
    const p = planFocus(prompt(4095), settings());
    assert.equal(p.chunked, false);
    assert.equal(p.prefillRows, 4096);
    assert.equal(planFocus(prompt(10, { 0: 1 }), settings()).prefillRows, 10, 'no second BOS');
    assert.equal(focusCost(p, 5).kvRows, 4101);
    assert.equal(focusCost(p, 5).rowsPerToken, 1);
  });
  it('at the threshold: ⌈(N − LW)/S⌉ chunks, the last one short, T = min(512, S, LW)', () => {
    const p = planFocus(prompt(4096), settings());
    assert.equal(p.nContext, 4032);
    assert.equal(p.chunks.length, 41);
    assert.deepEqual(p.chunks.at(-1), [4000, 4032]);
    assert.equal(p.tailLen, 64);
    assert.equal(p.tailStart, 4032);
    assert.equal(p.localStart, 4032);
    assert.deepEqual([p.tailBos, p.localBos, p.prefillRows], [true, true, 65]);
    assert.equal(p.chunkPassLengths[0], 100 + 65);
    assert.equal(planFocus(prompt(5000), settings({ stride: 40 })).tailLen, 40, 'T = S when S is smallest');
    assert.equal(planFocus(prompt(9000), settings({ localWindow: 2048, stride: 2048 })).tailLen, 512, 'T = 512 at most');
  });
  it('a last chunk of one token', () => {
    const p = planFocus(prompt(4165), settings({ stride: 100 }));
    assert.deepEqual(p.chunks.at(-1), [4100, 4101]);
    assert.equal(p.chunkPassLengths.at(-1), 1 + 65);
  });
  it('the tail and the local window get their own BOS check', () => {
    // LW = 64, T = 32: local starts at N − 64, tail at N − 32.
    const N = 4200;
    const both = planFocus(prompt(N, { [N - 64]: 1 }), settings({ stride: 32 }));
    assert.deepEqual([both.localBos, both.tailBos, both.prefillRows, both.chunkPassLengths[0]], [false, true, 64, 32 + 33]);
    const tail = planFocus(prompt(N, { [N - 32]: 1 }), settings({ stride: 32 }));
    assert.deepEqual([tail.localBos, tail.tailBos, tail.prefillRows, tail.chunkPassLengths[0]], [true, false, 65, 32 + 32]);
  });
  it('decode step k: each chunk runs chunk ‖ P ‖ g_1..g_k, the candidate g_k last; the local pass grows by one row', () => {
    const p = planFocus(prompt(4200), settings({ stride: 1000 }));
    // Chunk 0: 1000 tokens + P (64 + BOS) → prefill candidate prompt[N−1] at 1064; step 1: it is
    // re-run as an ordinary row at 1064, g_1 is the candidate at 1065.
    const s1 = focusStep(p, 1);
    assert.deepEqual(s1.chunkRows[0], { previousPosition: 1064, candidatePosition: 1065 });
    assert.deepEqual(focusStep(p, 3).chunkRows[0], { previousPosition: 1066, candidatePosition: 1067 });
    assert.deepEqual(s1.chunkRows.at(-1), { previousPosition: 136 + 64, candidatePosition: 136 + 65 });
    assert.deepEqual([s1.localFirstPosition, s1.localRows, focusStep(p, 3).localRows], [5, 66, 68]);
    assert.throws(() => focusStep(p, 0), RangeError);
  });
  it('KV rows ≈ N + C·(T + k): no saving over full attention; every token re-encodes 2C + LW + 1 + k rows', () => {
    const p = planFocus(prompt(4200), settings({ stride: 1000 }));
    const c = focusCost(p, 10);
    const C = 5;
    assert.equal(c.chunkRawRows, 4136 + C * (64 + 10));
    assert.equal(c.kvRows, 4136 + C * (64 + 10) + C);
    assert.ok(c.kvRows > c.fullAttentionRows);
    assert.equal(c.rowsPerToken, 2 * C + 65 + 10);
    assert.equal(c.peakRows, c.kvRows + 75);
    assert.equal(
      describeFocusPlan(p, 10),
      'focus: 5 chunks of ≤ 1,000 + tail 64, local window 64; KV 4,511 rows/layer after 10 tokens (full attention: 4,210); each token re-encodes 85 rows',
    );
  });
});

const ROOT = join(SHARED, 'golden-seeds');
const absent = existsSync(ROOT) ? false : `no golden seeds at ${ROOT} (../shared is absent)`;

describe('FocusLLM plan against the official code (golden-seeds focusllm cases)', { skip: absent }, () => {
  const dirs = absent ? [] : findGoldenCases(ROOT).filter((d) => loadGoldenCase(d).kind === 'focusllm');
  it('finds the three focusllm cases', () => assert.equal(dirs.length, 3));
  for (const dir of dirs) {
    const gc = loadGoldenCase(dir);
    it(gc.name, () => {
      const cfg = JSON.parse(readFileSync(join(ROOT, gc.model, 'config.json'), 'utf8'));
      const s = parseFocusSettings(cfg, gc.model)!;
      const cs = gc.settings as unknown as FocusCaseSettings;
      assert.deepEqual(
        [s.localWindow, s.stride, s.shortPromptLimit, s.tailCap, s.bosId, s.param],
        [cs.local_window, cs.memory_stride[0], cs.short_prompt_limit, cs.tail_cap, cs.bos_id_prepended, cs.beacon_param],
      );
      const p = planFocus(gc.input_ids, s);
      const f = gc.focus!;
      assert.deepEqual(
        {
          chunked: p.chunked, n_context: p.nContext, chunk_number: p.chunks.length, chunks: p.chunks, tail_len: p.tailLen, tail_start: p.tailStart,
          tail_bos_prepended: p.tailBos, local_start: p.localStart, local_bos_prepended: p.localBos, prefill_rows: p.prefillRows,
          chunk_pass_lengths_prefill: p.chunkPassLengths,
        },
        f,
      );
      for (const [k, want] of [[0, gc.memory_after_prefill!], [gc.greedy_steps, gc.memory_after_generation!]] as const) {
        const c = focusCost(p, k);
        assert.deepEqual({ candidate_kv: c.candidateRows, chunk_raw_kv: c.chunkRaw, chunk_raw_kv_total: c.chunkRawRows }, want, `after ${k} tokens`);
      }
    });
  }
});
