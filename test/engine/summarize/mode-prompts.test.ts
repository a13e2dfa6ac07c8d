// The summary mode rule and the instructions each kind of step gets.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { chooseMode, type ModeInputs } from '../../../src/engine/summarize/mode.js';
import { citeInstruction } from '../../../src/engine/citations/markers.js';
import {
  combineInstruction,
  finalInstruction,
  sectionInstruction,
  wholeInstruction,
  type SummaryRequest,
} from '../../../src/engine/summarize/prompts.js';
import { combineText } from '../../../src/engine/summarize/sections.js';

const base: ModeInputs = {
  requested: 'auto',
  strategy: 'auto',
  promptTokens: 100_000,
  answerTokens: 768,
  window: 32_768,
  beacon: null,
  hierarchicalBlocked: null,
};
const beacon = (fits: boolean) => ({ ratio: 8, maxTokens: 249_856, neededTokens: 101_792, fits, forced: false, candidates: [2, 4, 8] });

describe('chooseMode', () => {
  it('auto: one-pass when the document and the summary fit the window', () => {
    const d = chooseMode({ ...base, promptTokens: 30_000 });
    assert.equal(d.mode, 'one-pass');
    assert.match(d.reason, /fits the model's window \(30,768 of 32,768 tokens/);
  });

  it('auto: one-pass with beacon weights whose ratio condenses the document', () => {
    const d = chooseMode({ ...base, beacon: beacon(true) });
    assert.equal(d.mode, 'one-pass');
    assert.match(d.reason, /beacon weights: ratio 8/);
  });

  it('auto: hierarchical past the window without beacon weights, or when no trained ratio reaches', () => {
    assert.equal(chooseMode(base).mode, 'hierarchical');
    assert.match(chooseMode(base).reason, /no beacon weights/);
    const d = chooseMode({ ...base, beacon: beacon(false) });
    assert.equal(d.mode, 'hierarchical');
    assert.match(d.reason, /even beacon ratio 8 cannot condense it/);
  });

  it('auto: one-pass when --strategy names one, or when the window is too small for hierarchical prompts', () => {
    assert.deepEqual(chooseMode({ ...base, strategy: 'select' }), { mode: 'one-pass', reason: '--strategy select reads the whole document in one pass' });
    const d = chooseMode({ ...base, hierarchicalBlocked: 'a section would hold 10 tokens' });
    assert.equal(d.mode, 'one-pass');
    assert.match(d.reason, /exceeds the model's window \(32,768\), but that window is too small for a hierarchical summary \(a section would hold 10 tokens\)$/);
  });

  it('an explicit --mode wins', () => {
    assert.equal(chooseMode({ ...base, requested: 'one-pass' }).mode, 'one-pass');
    assert.equal(chooseMode({ ...base, promptTokens: 10, requested: 'hierarchical' }).mode, 'hierarchical');
  });
});

describe('summary instructions', () => {
  const plain: SummaryRequest = { length: 'medium', cite: null };

  it('each step says what it is given and how long to be', () => {
    assert.equal(wholeInstruction(plain), 'Summarize the document above in a few paragraphs.');
    assert.equal(sectionInstruction(plain), 'This is one part of a longer document. Summarize it in one paragraph.');
    assert.equal(combineInstruction(plain), 'Above are summaries of consecutive parts of a longer document. Combine them into one summary in one paragraph.');
    assert.equal(finalInstruction(plain), 'Above are summaries of the consecutive parts of a document. Summarize the whole document in a few paragraphs.');
    assert.match(wholeInstruction({ ...plain, length: 'short' }), /in three to five sentences\.$/);
    assert.match(sectionInstruction({ ...plain, length: 'long' }), /in a few paragraphs\.$/);
  });

  it('--focus reaches every step; a custom instruction replaces the task and guides the parts', () => {
    const focused: SummaryRequest = { ...plain, focus: 'error handling' };
    for (const f of [wholeInstruction, sectionInstruction, combineInstruction, finalInstruction]) assert.match(f(focused), /, focusing on error handling\./);
    const custom: SummaryRequest = { ...plain, instruction: 'List every character.' };
    assert.equal(wholeInstruction(custom), 'List every character.');
    assert.match(sectionInstruction(custom), /Keep what this task needs: List every character\.$/);
    assert.match(finalInstruction(custom), /^Above are summaries of the consecutive parts of a document\. List every character\.$/);
  });

  it('asks for citations in the forms the markers use', () => {
    const kinds = { pages: true, namedPages: false, lines: true, namedLines: true };
    assert.equal(citeInstruction(kinds), ' Cite sources as [p. N] or [file:line], as marked in the text.');
    assert.equal(citeInstruction({ pages: false, namedPages: false, lines: true, namedLines: false }), ' Cite sources as [line N], as marked in the text.');
    assert.equal(citeInstruction({ pages: false, namedPages: false, lines: false, namedLines: false }), '');
    assert.ok(finalInstruction({ ...plain, cite: kinds }).endsWith(citeInstruction(kinds)));
  });

  it('a combine step lists the summaries under their labels, in order', () => {
    assert.equal(
      combineText([
        { label: 'pp. 1–24', summary: 'The start. [p. 3]\n' },
        { label: 'pp. 25–40', summary: ' The end.' },
      ]),
      '### pp. 1–24\nThe start. [p. 3]\n\n### pp. 25–40\nThe end.',
    );
  });
});
