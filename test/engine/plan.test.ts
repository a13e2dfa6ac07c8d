// Memory plans: rows and bytes per strategy, and the does-not-fit messages with their numbers.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { planRun } from '../../src/engine/plan.js';
import { tinyModel } from '../helpers/models.js';

describe('planRun', () => {
  const plain = tinyModel('tiny').config; // P = 128, 2 layers, 2 KV heads × 8 dims
  const beacon = tinyModel('tiny-beacon').config; // W = 32, ratios 2/4/8, adapt-64
  const rowBytes = 2 * 2 * 2 * 8 * 4;

  it('full fits within the window and counts every row', () => {
    const p = planRun(plain, { documentTokens: 60, questionTokens: 10, maxNewTokens: 20, strategy: 'full' });
    assert.equal(p.fits, true);
    assert.equal(p.kvRows, 90);
    assert.equal(p.kvBytes, 90 * rowBytes);
  });
  it('full refuses a document past the window, naming the numbers and the options', () => {
    const p = planRun(plain, { documentTokens: 1000, maxNewTokens: 20, strategy: 'full' });
    assert.equal(p.fits, false);
    assert.match(p.reason!, /1,020 tokens/);
    assert.match(p.reason!, /holds 128/);
    assert.match(p.reason!, /--strategy select/);
  });
  it('a softplus-attention model says so in the description (the plan line)', () => {
    const softplus = tinyModel('tiny', { softplus: { scale: 'log_head_dim_x_log_n', reweight: { p: 3, offset: 1, noOffsetFirstRows: 3 } } }).config;
    assert.equal(planRun(softplus, { documentTokens: 60, maxNewTokens: 20, strategy: 'full' }).description, 'full (window 128), softplus attention (LSSAR p=3)');
    assert.equal(planRun(plain, { documentTokens: 60, maxNewTokens: 20, strategy: 'full' }).description, 'full (window 128)');
  });
  it('auto picks select for a long document on a plain model and full for a short one', () => {
    assert.equal(planRun(plain, { documentTokens: 5000 }).strategy.name, 'select');
    assert.equal(planRun(plain, { documentTokens: 10, maxNewTokens: 10 }).strategy.name, 'full');
  });
  it('select keeps every row but attends to a bounded set', () => {
    const p = planRun(plain, { documentTokens: 20000, maxNewTokens: 0, strategy: 'select' });
    assert.equal(p.kvRows, 20000);
    assert.ok(p.attendedRows <= 128);
  });
  it('stream notes the forgotten middle: document tokens only, never more than the document (issue 13.7)', () => {
    const p = planRun(plain, { documentTokens: 1000, maxNewTokens: 0, strategy: 'stream' });
    assert.equal(p.kvRows, 128);
    // sink 4 + recent 124 of 1,000 document tokens
    assert.equal(p.notes[0], "stream keeps the first 4 and the last 124 tokens: the answer never sees 872 of the document's 1,000 tokens (its middle)");
    // With a 20-token prefix, a 30-token question and a 100-token answer: when the answer begins the
    // last 124 rows are 94 document tokens + the question; by its end, none of the document.
    const q = planRun(plain, { prefixTokens: 20, documentTokens: 1000, questionTokens: 30, maxNewTokens: 100, strategy: 'stream' });
    assert.equal(q.notes[0], "stream keeps the first 4 and the last 124 tokens: the answer never sees 906 of the document's 1,000 tokens (its middle), 1,000 by the end of a 100-token answer");
    assert.equal(q.documentTokens, 1000);
    assert.equal(q.plannedTokens, 1150);
  });

  it('says why auto chose the strategy, and nothing when the options name it', () => {
    assert.match(planRun(plain, { documentTokens: 5000 }).strategyReason!, /^the prompt and answer \(5,512 tokens\) are past its 128-token window, and it has no beacon weights$/);
    assert.match(planRun(plain, { documentTokens: 10, maxNewTokens: 10 }).strategyReason!, /^the prompt and answer \(20 tokens\) fit its 128-token window$/);
    // 600 prompt tokens + the checkpoint's adapt-64 reserve = 664 > (128 − 32) × 4 + 32 = 416, ≤ 800 at ratio 8
    assert.equal(
      planRun(beacon, { documentTokens: 590, questionTokens: 10, maxNewTokens: 0 }).strategyReason,
      "the model has beacon weights, and ratio 8 holds 800 tokens, enough for the prompt (600 tokens) and the checkpoint's answer reserve (64 tokens)",
    );
    assert.equal(
      planRun(beacon, { documentTokens: 590, questionTokens: 10, maxNewTokens: 100 }).strategyReason,
      'the model has beacon weights, and ratio 8 holds 800 tokens, enough for the prompt (600 tokens) and the answer budget (--max-tokens 100)',
    );
    assert.match(planRun(beacon, { documentTokens: 50_000, maxNewTokens: 0 }).strategyReason!, /past its 128-token window, and its beacons hold at most [\d,]+$/);
    assert.equal(planRun(plain, { documentTokens: 5000, strategy: 'select' }).strategyReason, null);
  });
  it('beacon condenses: rows ≈ n/r + window', () => {
    const p = planRun(beacon, { documentTokens: 600, maxNewTokens: 0, strategy: 'beacon' });
    assert.equal(p.strategy.name === 'beacon' && p.strategy.ratio, 8); // 664 > 416 → r = 8
    assert.equal(p.kvRows, 18 * 4 + 24 + 3); // 18 windows × 4 beacons, 24 raw + 3 beacons open
  });
  it('beacon refuses past its largest ratio, auto falls back to select', () => {
    const p = planRun(beacon, { documentTokens: 5000, strategy: 'beacon' });
    assert.equal(p.fits, false);
    assert.match(p.reason!, /ratio 8/);
    assert.equal(planRun(beacon, { documentTokens: 5000 }).strategy.name, 'select');
  });
  it('focus holds every token and more, says what it re-encodes per token, against select and beacon', () => {
    const focus = tinyModel('tiny-focus').config; // LW 32, S 24, T 24, chunking from 96 tokens, P = 128
    const p = planRun(focus, { documentTokens: 300, questionTokens: 8, maxNewTokens: 10, strategy: 'focus' });
    assert.equal(p.fits, true);
    // 12 chunks of 24 + 20 tokens; each keeps its tokens, BOS + tail 24 and the 10 answer tokens, plus its candidate.
    const held = 276 + 12 * (25 + 10);
    assert.equal(p.kvRows, held + 33 + 10, 'at its peak the local pass is alive too');
    assert.equal(p.attendedRows, Math.max(24 + 25 + 10, 12 + 33 + 10), 'positions: a chunk pass here');
    assert.equal(
      p.notes[0],
      `focus: 12 chunks of ≤ 24 + tail 24, local window 32; KV ${held.toLocaleString('en-US')} rows/layer after 10 tokens (select: 318, beacon at ratio 8: ≈ 40); each token re-encodes 67 rows (select and beacon: 1)`,
    );
    assert.equal(planRun(focus, { documentTokens: 300, maxNewTokens: 10 }).strategy.name, 'focus', 'auto, past the window of a FocusLLM model');
    assert.equal(planRun(focus, { documentTokens: 60, maxNewTokens: 10 }).strategy.name, 'full', 'auto, within it');
    const far = planRun(focus, { documentTokens: 3000, maxNewTokens: 10, strategy: 'focus' });
    assert.equal(far.fits, false);
    assert.match(far.reason!, /focus uses 167 positions for it \(chunk passes of up to 49 rows, a local pass of 124 candidates \+ 33 rows, each with the answer\); the model has 128\. Use --strategy select/);
  });
  it('an answer budget that cannot fit is named as such, with the --max-tokens that would (not the document)', () => {
    const memory = planRun(plain, { documentTokens: 1000, questionTokens: 10, maxNewTokens: 100_000_000, strategy: 'select', memoryBudgetBytes: 1024 * 1024 });
    assert.equal(memory.fits, false);
    assert.equal(memory.tooLong, 'answer');
    const most = Math.floor((1024 * 1024) / rowBytes) - 1010;
    assert.match(memory.reason!, new RegExp(`^the answer budget of 100,000,000 tokens \\(--max-tokens\\) does not fit after the document and question \\(1,010 tokens\\): at most ${most.toLocaleString('en-US')} answer tokens fit here`));
    assert.match(memory.reason!, new RegExp(`Use --max-tokens ${most.toLocaleString('en-US')} or less$`));
    assert.doesNotMatch(memory.reason!, /--strategy/);
    assert.equal(planRun(plain, { documentTokens: 1000, questionTokens: 10, maxNewTokens: most, strategy: 'select', memoryBudgetBytes: 1024 * 1024 }).fits, true);

    const window = planRun(plain, { documentTokens: 60, questionTokens: 10, maxNewTokens: 500, strategy: 'full' });
    assert.deepEqual([window.fits, window.tooLong], [false, 'answer']);
    assert.match(window.reason!, /at most 58 answer tokens fit here/);
    assert.equal(planRun(plain, { documentTokens: 1000, maxNewTokens: 20, strategy: 'full' }).tooLong, 'document', 'a document past the window is the document');
  });
  it('beacon refuses an answer budget its ratio cannot hold, naming --max-tokens, as full does (issue 13, the 100,000,000-token answer)', () => {
    // Ratio 8 holds 800 tokens; the prompt takes 600 (its ratio chosen for 600 + the adapt-64 reserve).
    const p = planRun(beacon, { documentTokens: 590, questionTokens: 10, maxNewTokens: 100_000_000, strategy: 'beacon' });
    assert.deepEqual([p.fits, p.tooLong], [false, 'answer']);
    assert.equal(
      p.reason,
      'the answer budget of 100,000,000 tokens (--max-tokens) does not fit after the document and question (600 tokens): ' +
        'at most 200 answer tokens fit here (beacon at ratio 8 holds 800 tokens). Use --max-tokens 200 or less',
    );
    assert.equal(planRun(beacon, { documentTokens: 590, questionTokens: 10, maxNewTokens: 200, strategy: 'beacon' }).fits, true);
    assert.equal(planRun(beacon, { documentTokens: 590, questionTokens: 10, maxNewTokens: 201, strategy: 'beacon' }).fits, false);
    // auto does not pick a beacon ratio that would cut the answer short: select holds it
    assert.equal(planRun(beacon, { documentTokens: 590, questionTokens: 10, maxNewTokens: 201 }).strategy.name, 'select');
  });
  it('refuses a plan over the memory budget', () => {
    const p = planRun(plain, { documentTokens: 100000, strategy: 'select', memoryBudgetBytes: 1024 * 1024 });
    assert.equal(p.fits, false);
    assert.match(p.reason!, /memory budget/);
  });
});
