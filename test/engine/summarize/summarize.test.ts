// `ctx summarize` end to end on the fixture repository and the three-page fixture PDF, in both modes,
// with tiny random-weight models on the reference backend (the summaries are noise; what is checked
// is which mode ran, how the work was cut, what was reported, and the citation checks).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { before, describe, it } from 'node:test';
import { summarize, type SummarizeOptions } from '../../../src/cli/summarize.js';
import type { RunEvent } from '../../../src/ui/events.js';
import { JsonRenderer } from '../../../src/ui/json.js';
import { fixtureModel } from '../../../scripts/make-fixture-models.js';
import { inputFixtures } from '../../helpers/fixtures.js';
import { wideTinyModel } from './wide-model.js';

const BIN = join(import.meta.dirname, '../..', '..', 'bin', 'ctx.js');
const PDF = 'pdf/three-pages.pdf';
let inputs: string;
let wide: string;
let beacon: string;
let tiny: string;

/** Runs ctx in the input fixtures folder, so paths are short ("repo/src/main.ts"). */
function ctx(args: string[]) {
  const env = { ...process.env, CTX_CONFIG_DIR: tmpdir(), CTX_CACHE_DIR: mkdtempSync(join(tmpdir(), 'ctx-cache-')) };
  return spawnSync(process.execPath, [BIN, ...args, '--backend', 'reference'], { cwd: inputs, encoding: 'utf8', env });
}

function json(args: string[]) {
  const r = ctx([...args, '--json']);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

/** A JSON renderer that also keeps every event. */
class Recorder extends JsonRenderer {
  readonly events: RunEvent[] = [];
  constructor(private readonly onEvent?: (e: RunEvent) => void) {
    super(new PassThrough());
  }
  override event(e: RunEvent): void {
    this.events.push(e);
    super.event(e);
    this.onEvent?.(e);
  }
}

/** What summarize() takes of a CLI run: this process's stdin and environment, and a signal. */
const run = (signal: AbortSignal) => ({ stdin: process.stdin, env: process.env, signal });

function options(over: Partial<SummarizeOptions>): SummarizeOptions {
  return {
    strategy: 'auto',
    backend: 'reference',
    maxTokens: 6,
    temperature: 0,
    topK: 0,
    topP: 1,
    repetitionPenalty: 1,
    seed: 0,
    stream: true,
    maxFileBytes: 1024 * 1024,
    cite: true,
    length: 'medium',
    mode: 'auto',
    ...over,
  } as SummarizeOptions;
}

before(() => {
  inputs = inputFixtures().dir;
  wide = wideTinyModel(1024);
  beacon = fixtureModel('tiny-beacon');
  tiny = fixtureModel('tiny');
});

describe('ctx summarize: a repository', () => {
  it('one pass when the model has beacon weights that condense it (auto)', () => {
    const out = json(['summarize', 'repo/src', '-m', beacon, '--max-tokens', '6']);
    assert.equal(out.summary.mode, 'one-pass');
    assert.match(out.summary.reason, /beacon weights: ratio \d+/);
    assert.match(out.strategy, /^beacon/);
    assert.ok(out.tokens.document > 128, 'longer than the window');
    assert.ok(out.markers.count >= 5 && out.markers.tokens > out.markers.count, 'one marker per file at least');
    assert.ok(Array.isArray(out.citations));
  });

  it('hierarchical: sections per file group, combined per folder then the whole; a section event per step', async () => {
    const r = new Recorder();
    const cwd = process.cwd();
    process.chdir(inputs);
    try {
      await summarize({ specs: ['repo'] }, options({ model: wide, mode: 'hierarchical', sectionTokens: 150 }), r, run(new AbortController().signal));
    } finally {
      process.chdir(cwd);
    }
    const out = r.result as unknown as { summary: { mode: string; sections: number; combines: number; steps: Array<{ kind: string; label: string; promptTokens: number }> } };
    const steps = out.summary.steps;
    assert.equal(out.summary.mode, 'hierarchical');
    assert.equal(steps.length, out.summary.sections + out.summary.combines);
    assert.deepEqual(steps[steps.length - 1], { ...steps[steps.length - 1], kind: 'combine', label: 'repo/' });
    const src = steps.findIndex((s) => s.label === 'repo/src/');
    assert.ok(src > 0 && steps[src]!.kind === 'combine', 'src/ is combined before the whole');
    for (const s of steps) assert.ok(s.promptTokens <= 1024, `${s.label}: ${s.promptTokens} prompt tokens within the window`);
    assert.ok(steps.some((s) => s.kind === 'section' && s.label.startsWith('repo/src/')));

    const sections = r.events.filter((e): e is Extract<RunEvent, { type: 'section' }> => e.type === 'section');
    assert.deepEqual(sections.map((e) => e.done), steps.map((_, i) => i));
    assert.deepEqual(sections.map((e) => e.label), steps.map((s) => s.label));
    assert.ok(sections.every((e) => e.total === steps.length));
    const plan = r.events.find((e) => e.type === 'plan') as Extract<RunEvent, { type: 'plan' }>;
    assert.match(plan.strategy, /^hierarchical: \d+ sections \+ \d+ combine steps/);
    assert.match(plan.notes[0]!, /^summary mode: hierarchical \(asked for with --mode hierarchical\)/);
    const types = r.events.map((e) => e.type);
    assert.ok(types.indexOf('answer') > types.lastIndexOf('section') && types.indexOf('citations') > types.indexOf('answer'));
  });
});

describe('ctx summarize: cancelling', () => {
  it('the run\'s signal stops a hierarchical summary: the step running ends, no other starts', async () => {
    const stop = new AbortController();
    const r = new Recorder((e) => {
      if (e.type === 'section' && e.done === 1) stop.abort();
    });
    const cwd = process.cwd();
    process.chdir(inputs);
    try {
      await assert.rejects(summarize({ specs: ['repo'] }, options({ model: wide, mode: 'hierarchical', sectionTokens: 150 }), r, run(stop.signal)), { name: 'AbortError' });
    } finally {
      process.chdir(cwd);
    }
    const sections = r.events.filter((e) => e.type === 'section');
    assert.equal(sections.length, 2, 'no step starts after the abort');
    assert.equal(r.events.some((e) => e.type === 'answer'), false);
  });
});

describe('ctx summarize: a multi-page PDF', () => {
  it('one pass, beacon at a forced ratio', { skip: inputFixtures().skipPdf }, () => {
    const out = json(['summarize', PDF, '-m', beacon, '--mode', 'one-pass', '--beacon-ratio', '32', '--max-tokens', '4']);
    assert.equal(out.summary.mode, 'one-pass');
    assert.match(out.strategy, /^beacon v3 \(ratio 32/);
    assert.deepEqual([out.markers.count, out.sources[0].pages], [3, 3]);
  });

  it('hierarchical (auto: past the window, no beacon weights): a section per page, then the whole', { skip: inputFixtures().skipPdf }, () => {
    const out = json(['summarize', PDF, '-m', wide, '--max-tokens', '6', '--length', 'short']);
    assert.equal(out.summary.mode, 'hierarchical');
    assert.match(out.summary.reason, /exceeds the model's window \(1,024\) and the model has no beacon weights/);
    assert.deepEqual(out.summary.steps.map((s: { label: string }) => s.label), ['p. 1', 'p. 2', 'p. 3', PDF]);
    assert.equal(typeof out.answer, 'string');
    assert.ok(out.summary.steps.every((s: { generatedTokens: number }) => s.generatedTokens <= 6));
  });
});

describe('ctx summarize: choosing and refusing', () => {
  it('auto reads in one pass when the window is too small for hierarchical prompts, and says so', () => {
    const out = json(['summarize', 'repo', '-m', tiny, '--max-tokens', '4']);
    assert.equal(out.summary.mode, 'one-pass');
    assert.match(out.summary.reason, /but that window is too small for a hierarchical summary/);
    assert.match(out.strategy, /^select/);
  });

  it('--mode hierarchical on a 128-token window: one line, exit 7', () => {
    const r = ctx(['summarize', 'repo', '-m', tiny, '--mode', 'hierarchical', '-q']);
    assert.equal(r.status, 7);
    assert.match(r.stderr, /^ctx: the model's window of 128 tokens is too small for a hierarchical summary \(with its prompts/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  it('--strategy with --mode hierarchical is a usage error', () => {
    const r = ctx(['summarize', 'repo', '-m', wide, '--mode', 'hierarchical', '--strategy', 'select']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--strategy select applies to one-pass summaries/);
  });

  it('plain output: the mode note on stderr, the summary alone on stdout', () => {
    const r = ctx(['summarize', 'repo/src', '-m', wide, '--max-tokens', '5', '--no-stream']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /note: summary mode: one-pass \(the document fits the model's window/);
    assert.doesNotMatch(r.stdout, /summary mode/);
  });
});
