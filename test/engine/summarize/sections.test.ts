// The hierarchical plan: section boundaries (pages, paragraphs, lines, files, folders), labels,
// sizes, and how summaries are combined. Most cases count one token per character so that the
// boundaries are easy to state; one runs on the tiny fixture tokenizer and the input fixtures.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addSourceMarkers } from '../../../src/engine/citations/markers.js';
import { combineText, planSummary, stepsInOrder, type Count, type PlanNode, type SectionLimits } from '../../../src/engine/summarize/sections.js';
import type { Document, Segment } from '../../../src/input/document.js';
import { readInputs } from '../../../src/input/read.js';
import { loadTokenizer } from '../../../src/model/tokenizer.js';
import { fixtureModel } from '../../../scripts/make-fixture-models.js';
import { inputFixtures } from '../../helpers/fixtures.js';

const chars: Count = async (text) => text.length;

function doc(segments: Segment[]): Document {
  return { segments, sources: [], skipped: [] };
}

/** `n` characters: "<label>" padded with dots, ending in a line break. */
function filled(label: string, n: number): string {
  return `${label}${'.'.repeat(n - label.length - 1)}\n`;
}

const labels = (nodes: PlanNode[]) => nodes.map((n) => n.label);
const children = (n: PlanNode) => (n.kind === 'combine' ? n.children : []);

/** Worst-case size of a combine step, as the planner counts it. */
async function combineCost(n: PlanNode, limits: SectionLimits, count: Count): Promise<number> {
  const kids = children(n);
  return (await count(combineText(kids.map((k) => ({ label: k.label, summary: '' }))))) + kids.length * limits.partTokens;
}

describe('planSummary: a PDF', () => {
  const pdf = (sizes: number[]) => doc(sizes.map((n, i) => ({ text: filled(`Page ${i + 1}`, n), source: { path: 'book.pdf', page: i + 1 } })));

  it('packs whole pages into page ranges, then combines them', async () => {
    const d = pdf([100, 100, 100, 100, 100, 100]);
    const plan = await planSummary(d, { sectionTokens: 250, combineTokens: 1000, partTokens: 10 }, chars);
    assert.deepEqual(plan.sections.map((s) => [s.label, s.tokens]), [['pp. 1–2', 200], ['pp. 3–4', 200], ['pp. 5–6', 200]]);
    assert.equal(plan.root.kind, 'combine');
    assert.equal(plan.root.label, 'book.pdf');
    assert.deepEqual(labels(children(plan.root)), ['pp. 1–2', 'pp. 3–4', 'pp. 5–6']);
    assert.equal(plan.sections.map((s) => s.text).join(''), d.segments.map((s) => s.text).join(''));
    assert.deepEqual([plan.combines, plan.steps], [1, 4]);
  });

  it('a document that fits one section is one step', async () => {
    const plan = await planSummary(pdf([100, 100]), { sectionTokens: 250, combineTokens: 1000, partTokens: 10 }, chars);
    assert.deepEqual([plan.root.kind, plan.root.label, plan.steps], ['section', 'book.pdf', 1]);
  });

  it('splits a page too big for a section at its line breaks', async () => {
    const big = Array.from({ length: 8 }, (_, i) => filled(`p2 line ${i + 1}`, 50)).join(''); // 400 characters
    const d = doc([
      { text: filled('Page 1', 100), source: { path: 'book.pdf', page: 1 } },
      { text: big, source: { path: 'book.pdf', page: 2 } },
      { text: filled('Page 3', 100), source: { path: 'book.pdf', page: 3 } },
    ]);
    const plan = await planSummary(d, { sectionTokens: 250, combineTokens: 1000, partTokens: 10 }, chars);
    assert.deepEqual(plan.sections.map((s) => [s.label, s.tokens]), [['pp. 1–2', 250], ['p. 2', 250], ['p. 3', 100]]);
    assert.equal(plan.sections[1]!.text, big.slice(150, 400));
    assert.equal(plan.sections.map((s) => s.text).join(''), d.segments.map((s) => s.text).join(''));
  });
});

describe('planSummary: text', () => {
  it('ends sections at paragraph breaks and labels them with their lines', async () => {
    // Paragraphs of 3, 5, 2 and 4 lines of 20 characters, each followed by a blank line.
    const para = (first: number, n: number) => Array.from({ length: n }, (_, i) => filled(`line ${first + i}`, 20)).join('') + '\n';
    const text = para(1, 3) + para(5, 5) + para(11, 2) + para(14, 4);
    const plan = await planSummary(doc([{ text, source: { path: 'notes.txt', lineStart: 1 } }]), { sectionTokens: 130, combineTokens: 1000, partTokens: 10 }, chars);
    assert.deepEqual(plan.sections.map((s) => s.label), ['lines 1–4', 'lines 5–10', 'lines 11–18']);
    for (const s of plan.sections) {
      const first = Number(/^line (\d+)/.exec(s.text)![1]);
      assert.equal(s.label.startsWith(`lines ${first}–`), true, `${s.label} starts at line ${first}`);
      assert.ok(s.text.endsWith('\n\n') && s.tokens <= 130);
    }
    assert.equal(plan.sections.map((s) => s.text).join(''), text);
  });

  it('cuts a line longer than a section at a measured length', async () => {
    const text = 'x'.repeat(1000) + '\nlast\n';
    const plan = await planSummary(doc([{ text, source: { path: 'one-line.txt', lineStart: 1 } }]), { sectionTokens: 300, combineTokens: 1000, partTokens: 10 }, chars);
    assert.deepEqual(plan.sections.map((s) => s.tokens), [300, 300, 300, 106]);
    assert.deepEqual(plan.sections.map((s) => s.label), ['line 1', 'line 1', 'line 1', 'lines 1–2']);
    assert.equal(plan.sections.map((s) => s.text).join(''), text);
  });
});

describe('planSummary: a repository follows the tree', () => {
  const file = (path: string, body: string, first: boolean): Segment[] => [
    { text: `${first ? '' : '\n'}==> ${path} <==\n`, source: { path } },
    { text: body, source: { path, lineStart: 1 } },
  ];
  const bigBody = Array.from({ length: 12 }, (_, i) => filled(`big ${i + 1}`, 40)).join(''); // 480 characters
  const repo = doc([
    ...file('repo/README.md', filled('readme', 50), true),
    ...file('repo/docs/guide.md', filled('guide', 30), false),
    ...file('repo/src/a.ts', filled('a', 40), false),
    ...file('repo/src/b.ts', filled('b', 40), false),
    ...file('repo/src/big.ts', bigBody, false),
    ...file('repo/zeta.md', filled('zeta', 20), false),
  ]);

  it('small folders are one section, small files are grouped, a big file is split, then folder by folder', async () => {
    const limits = { sectionTokens: 200, combineTokens: 1000, partTokens: 10 };
    const plan = await planSummary(repo, limits, chars);
    assert.deepEqual(plan.sections.map((s) => s.label), [
      'repo/README.md',
      'repo/docs/ (1 file)',
      'repo/src/a.ts … repo/src/b.ts (2 files)',
      'repo/src/big.ts lines 1–4',
      'repo/src/big.ts lines 5–8',
      'repo/src/big.ts lines 9–12',
      'repo/zeta.md',
    ]);
    const root = plan.root;
    assert.equal(root.label, 'repo/');
    assert.deepEqual(labels(children(root)), ['repo/README.md', 'repo/docs/ (1 file)', 'repo/src/', 'repo/zeta.md']);
    const src = children(root)[2]!;
    assert.deepEqual(labels(children(src)), ['repo/src/a.ts … repo/src/b.ts (2 files)', 'repo/src/big.ts']);
    assert.equal(children(children(src)[1]!).length, 3);
    // Every part of the split file says which file it is.
    assert.ok(plan.sections[3]!.text.startsWith('==> repo/src/big.ts <==\n'));
    assert.ok(plan.sections[4]!.text.startsWith('==> repo/src/big.ts (continued) <==\n'));
    for (const s of plan.sections) assert.ok(s.tokens <= limits.sectionTokens);
    // Children run before their parent, the whole last.
    const order = stepsInOrder(root);
    assert.equal(order.length, plan.steps);
    assert.equal(order[order.length - 1], root);
    for (const [i, step] of order.entries()) for (const c of children(step)) assert.ok(order.indexOf(c) < i);
  });

  it('the whole repository in one section when it fits', async () => {
    const plan = await planSummary(repo, { sectionTokens: 2000, combineTokens: 1000, partTokens: 10 }, chars);
    assert.deepEqual([plan.root.kind, plan.root.label], ['section', 'repo/ (6 files)']);
  });
});

describe('planSummary: combining', () => {
  const many = doc(Array.from({ length: 20 }, (_, i) => ({ text: filled(`Page ${i + 1}`, 100), source: { path: 'long.pdf', page: i + 1 } })));

  it('combines in groups of consecutive summaries when they do not fit one step, each step within its limit', async () => {
    const limits = { sectionTokens: 100, combineTokens: 120, partTokens: 20 };
    const plan = await planSummary(many, limits, chars);
    assert.equal(plan.sections.length, 20);
    const top = children(plan.root);
    assert.ok(top.length > 1 && top.length <= 4);
    assert.match(top[0]!.label, /^long\.pdf \(part 1\/\d+/);
    const combines = stepsInOrder(plan.root).filter((n) => n.kind === 'combine');
    assert.equal(combines.length, plan.combines);
    for (const c of combines) {
      assert.ok(children(c).length >= 2);
      assert.ok((await combineCost(c, limits, chars)) <= limits.combineTokens, `${c.label} within the combine limit`);
    }
    // The sections, in order, are the leaves of the tree.
    const leaves = stepsInOrder(plan.root).filter((n) => n.kind === 'section');
    assert.deepEqual(leaves.map((n) => n.label), plan.sections.map((s) => s.label));
  });

  it('refuses when a combine step cannot hold two summaries', async () => {
    await assert.rejects(planSummary(many, { sectionTokens: 100, combineTokens: 30, partTokens: 20 }, chars), /combine step holds 30 tokens/);
  });
});

describe('planSummary on the fixtures with the tiny tokenizer', () => {
  it('every section of the marked fixture repository fits, and together they hold all of it', async () => {
    const tok = await loadTokenizer(fixtureModel('tiny'));
    const count: Count = async (text) => (await tok.encodeSegments([{ text, source: { path: '' } }], { workers: 0 })).ids.length;
    const read = await readInputs([inputFixtures().path('repo')]);
    const marked = addSourceMarkers(read).doc;
    const limits = { sectionTokens: 160, combineTokens: 600, partTokens: 16 };
    const plan = await planSummary(marked, limits, count);
    for (const s of plan.sections) {
      assert.equal(s.tokens, await count(s.text));
      assert.ok(s.tokens <= limits.sectionTokens, `${s.label}: ${s.tokens} tokens`);
    }
    // File headers aside (a later part of a file gets its own), the sections hold the document.
    const body = marked.segments.filter((seg) => seg.source.lineStart !== undefined).map((seg) => seg.text).join('');
    assert.equal(plan.sections.map((s) => s.text.replace(/==> [^\n]*? <==\n/g, '')).join(''), body);
    assert.ok(plan.combines >= 1);
  });
});
