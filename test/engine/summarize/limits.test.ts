// Section and combine sizes come from the model's window minus its measured prompts; summaries that
// re-encode longer than their cap are clipped before they are combined.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Conversation } from '../../../src/engine/conversation.js';
import type { LoadedModel } from '../../../src/engine/loaded-model.js';
import { combineInstruction, finalInstruction, sectionInstruction, wholeInstruction, type SummaryRequest } from '../../../src/engine/summarize/prompts.js';
import { clipToTokens, summaryLimits } from '../../../src/engine/summarize/run.js';
import { openModel } from '../../../src/model/model.js';
import { loadTokenizer } from '../../../src/model/tokenizer.js';
import { fixtureModel } from '../../../scripts/make-fixture-models.js';
import { wideTinyModel } from './wide-model.js';

/** What summaryLimits needs of a loaded model: the model's config and tokenizer. */
async function loadedOf(dir: string): Promise<LoadedModel> {
  return { model: openModel(dir), tokenizer: await loadTokenizer(dir) } as unknown as LoadedModel;
}

const request: SummaryRequest = { length: 'short', cite: { pages: true, namedPages: false, lines: false, namedLines: false } };

describe('summaryLimits', () => {
  it('a section or combine prompt, with its instruction and summary reserve, fills the window and no more', async () => {
    const loaded = await loadedOf(wideTinyModel(1024));
    const limits = summaryLimits(loaded, { request, maxTokens: 40 });
    assert.deepEqual([limits.window, limits.partTokens, limits.finalTokens, limits.problem], [1024, 40, 40, null]);
    const c = new Conversation(loaded.tokenizer);
    const prefix = c.documentPrefix().length;
    const around = (instruction: string, reserve: number) => prefix + c.firstQuestion(instruction).length + reserve;
    const sectionWorst = Math.max(around(sectionInstruction(request), 40), around(wholeInstruction(request), 40));
    const combineWorst = Math.max(around(combineInstruction(request), 40), around(finalInstruction(request), 40));
    assert.equal(limits.sectionTokens + sectionWorst, 1024);
    assert.equal(limits.combineTokens + combineWorst, 1024);
  });

  it('parts are capped by --length, --section-tokens makes sections smaller, never larger', async () => {
    const loaded = await loadedOf(wideTinyModel(1024));
    assert.equal(summaryLimits(loaded, { request, maxTokens: 768 }).partTokens, 128);
    assert.equal(summaryLimits(loaded, { request, maxTokens: 8, sectionTokens: 300 }).sectionTokens, 300);
    assert.ok(summaryLimits(loaded, { request, maxTokens: 8, sectionTokens: 5000 }).sectionTokens < 1024);
  });

  it('a 128-token window is too small, with the numbers', async () => {
    const limits = summaryLimits(await loadedOf(fixtureModel('tiny')), { request, maxTokens: 8 });
    assert.match(limits.problem!, /^with its prompts and summaries of up to 8 tokens, a section would hold \d+ tokens and a combine step \d+$/);
  });
});

describe('clipToTokens', () => {
  it('cuts a text that encodes past the cap to the longest prefix within it', async () => {
    const tok = await loadTokenizer(fixtureModel('tiny'));
    const count = async (t: string) => (await tok.encodeSegments([{ text: t, source: { path: '' } }], { workers: 0 })).ids.length;
    const broken = '\uFFFD'.repeat(10); // three byte-tokens each in the byte-level tokenizer
    assert.equal(await count(broken), 30);
    assert.equal(await clipToTokens(broken, 7, count), '\uFFFD\uFFFD');
    assert.equal(await clipToTokens('short', 7, count), 'short');
  });
});
