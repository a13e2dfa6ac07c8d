// One count of a document everywhere (issue 13.7): for the same inputs, `inspect`, ask's plan line,
// the progress total, the `read` line, `--json`'s tokens.document, summarize and the stream note all
// give the document's tokens as the library counts them (prepareDocument: citation markers included
// when citations are on, the prompt's template and system prefix not). Each printed number is checked
// against that one source of truth: on fixtures always, and on the shared 261-page PDF when
// ../shared is beside the repo.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fixtureModel } from '../../scripts/make-fixture-models.js';
import { prepareDocument } from '../../src/engine/open.js';
import { planModelOf, planPrompt } from '../../src/engine/prompt-plan.js';
import { adaptReserve } from '../../src/engine/strategies/beacon-ratio.js';
import type { RunEvent } from '../../src/engine/events.js';
import { REPO_ROOT, inputFixtures, scratchDir, sharedPath } from '../helpers/fixtures.js';
import { BIN, cleanEnv, ctx } from './spawn-ctx.js';

const fx = inputFixtures();
const n = (x: number) => x.toLocaleString('en-US');

/** The source of truth: the document's tokens as the library reads it. */
async function truth(inputs: string[], model: string, cite: boolean): Promise<{ tokens: number; markers: number }> {
  let markers = 0;
  const prepared = await prepareDocument({ inputs, model, cite, backend: 'reference', cache: false, onEvent: (e) => e.type === 'markers' && (markers = e.count) });
  try {
    return { tokens: prepared.tokens.count, markers };
  } finally {
    await prepared.close();
  }
}

/** JSON Lines of an --events run. */
function events(stdout: string): RunEvent[] {
  return stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as RunEvent);
}
const only = <T extends RunEvent['type']>(es: RunEvent[], type: T) => es.filter((e): e is Extract<RunEvent, { type: T }> => e.type === type);

describe('one document count everywhere (fixtures)', () => {
  const model = fixtureModel('tiny'); // byte-level tokenizer, chat template (a prompt prefix), 128-token window
  const dir = scratchDir('counts');
  const cache = join(dir, 'cache');
  const text = join(dir, 'notes.txt');
  writeFileSync(text, Array.from({ length: 30 }, (_, i) => `line ${i + 1}: the answer is ${i * 7}.`).join('\n') + '\n');
  const folder = join(dir, 'repo');
  mkdirSync(join(folder, 'src'), { recursive: true });
  writeFileSync(join(folder, 'README.md'), '# demo\n\nA small repository.\n');
  writeFileSync(join(folder, 'src', 'main.ts'), Array.from({ length: 12 }, (_, i) => `export const v${i} = ${i};`).join('\n') + '\n');
  const cases: Array<{ label: string; inputs: () => string[]; skip?: string | false }> = [
    { label: 'a text file (line markers)', inputs: () => [text] },
    { label: 'a folder of files (named line markers, file headers)', inputs: () => [folder] },
    { label: 'a PDF (page markers)', inputs: () => [fx.path('pdf/three-pages.pdf')], skip: fx.skipPdf },
  ];

  for (const c of cases) {
    it(`${c.label}: inspect, ask (plan, progress, read, --json), a cached ask, summarize and chat agree with the library`, { skip: c.skip }, async () => {
      const inputs = c.inputs();
      const env = { CTX_CACHE_DIR: cache };
      const cited = await truth(inputs, model, true);
      const plain = await truth(inputs, model, false);
      assert.ok(cited.markers > 0 && cited.tokens > plain.tokens, 'markers are part of the cited document');

      // inspect: the total, the sources adding up to it, the markers it includes, the plan's document
      const report = JSON.parse(ctx(['inspect', '--json', '-m', model, ...inputs], { env }).stdout);
      assert.equal(report.tokens.total, cited.tokens);
      assert.equal(report.sources.reduce((s: number, x: { tokens: number }) => s + x.tokens, 0), cited.tokens);
      assert.equal(report.tokens.markers.count, cited.markers);
      assert.equal(report.plan.documentTokens, cited.tokens);
      const inspectText = ctx(['inspect', '-m', model, ...inputs], { env }).stdout;
      assert.match(inspectText, new RegExp(`^Total: ${n(cited.tokens)} tokens `, 'm'));
      assert.match(inspectText, new RegExp(`including ${n(cited.markers)} citation markers? \\(`));
      assert.match(inspectText, new RegExp(`document ${n(cited.tokens)} \\+`));
      // --kv-dtype f32: the KV bytes of the reference backend chat runs on below (inspect plans the cpu backend's f16 by default).
      const uncited = JSON.parse(ctx(['inspect', '--json', '--no-cite', '--max-tokens', '2', '--kv-dtype', 'f32', '-m', model, ...inputs], { env }).stdout);
      assert.equal(uncited.tokens.total, plain.tokens);

      // ask --events: every number that names the document
      const args = ['ask', ...inputs, 'What is the answer?', '-m', model, '--backend', 'reference', '--max-tokens', '2'];
      const run = ctx([...args, '--no-cache', '--events'], { env });
      assert.equal(run.code, 0, run.stderr);
      const es = events(run.stdout);
      const plan = only(es, 'plan')[0]!;
      assert.equal(plan.documentTokens, cited.tokens);
      assert.equal(only(es, 'markers')[0]!.count, cited.markers);
      const progress = only(es, 'progress');
      assert.ok(progress.length > 0 && progress.every((p) => p.total === cited.tokens && p.done <= p.total), 'progress counts the document');
      assert.equal(progress.at(-1)!.done, cited.tokens);
      assert.equal(plan.sourceEnds!.at(-1), cited.tokens, 'the last source ends where the document does');
      assert.equal(only(es, 'read')[0]!.tokens, cited.tokens);
      assert.equal((es.at(-1) as unknown as { tokens: { document: number } }).tokens.document, cited.tokens);

      // ask as a person reads it (plain stderr): the plan line, the progress lines, the read line
      const first = ctx(args, { env });
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stderr, new RegExp(`^${n(cited.tokens)} tokens · `, 'm'));
      const reading = first.stderr.split('\n').filter((l) => l.startsWith('reading '));
      assert.ok(reading.length > 0 && reading.every((l) => l.includes(`/${n(cited.tokens)} tokens`)), first.stderr);
      assert.match(first.stderr, new RegExp(`^read ${n(cited.tokens)} tokens in `, 'm'));
      // the second ask is answered from the session cache, with the same count
      const second = ctx(args, { env });
      assert.match(second.stderr, new RegExp(`^document read from cache \\(${n(cited.tokens)} tokens\\)`, 'm'));
      const listed = ctx(['cache', 'ls', '--json'], { env });
      assert.ok((JSON.parse(listed.stdout) as { entries: Array<{ tokens: number }> }).entries.some((e) => e.tokens === cited.tokens), listed.stdout);

      // summarize: its plan and its read line count the same document
      const sum = ctx(['summarize', ...inputs, '-m', model, '--backend', 'reference', '--max-tokens', '2', '--no-cache', '--events'], { env });
      assert.equal(sum.code, 0, sum.stderr);
      const ses = events(sum.stdout);
      assert.equal(only(ses, 'plan')[0]!.documentTokens, cited.tokens);
      assert.equal(only(ses, 'read')[0]!.tokens, cited.tokens);

      // chat reads without markers: the --no-cite count
      const chat = ctx(['chat', ...inputs, '-m', model, '--backend', 'reference', '--max-tokens', '2', '--no-cache', '--events'], { env, input: 'q\n' });
      assert.equal(chat.code, 0, chat.stderr);
      const chatPlan = only(events(chat.stdout), 'plan')[0]!;
      assert.equal(chatPlan.documentTokens, plain.tokens);
      // chat, like inspect, plans for a question it does not know yet: the same rows and bytes
      assert.deepEqual([chatPlan.kvRows, chatPlan.kvBytes, chatPlan.strategy], [uncited.plan.kvRows, uncited.plan.kvBytes, uncited.plan.description]);
    });
  }

  it('the stream note counts document tokens, never more than the document has', async () => {
    const cited = await truth([text], model, true);
    const r = ctx(['ask', text, 'What?', '-m', model, '--backend', 'reference', '--strategy', 'stream', '--max-tokens', '2', '--no-cache', '--events'], { env: { CTX_CACHE_DIR: cache } });
    assert.equal(r.code, 0, r.stderr);
    const note = only(events(r.stdout), 'plan')[0]!.notes.find((x) => x.startsWith('stream keeps'))!;
    const m = /never sees ([\d,]+) of the document's ([\d,]+) tokens/.exec(note);
    assert.ok(m, note);
    assert.equal(Number(m[2]!.replace(/,/g, '')), cited.tokens);
    assert.ok(Number(m[1]!.replace(/,/g, '')) <= cited.tokens, note);
  });
});

/** `ctx <args> --events` until `stopAt` is seen, then Ctrl-C: the events so far. */
function eventsUntil(args: string[], stopAt: RunEvent['type'], env: Record<string, string>): Promise<RunEvent[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args, '--events'], { env: cleanEnv(env), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let stopped = false;
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!stopped && out.includes(`{"type":"${stopAt}"`)) {
        stopped = true;
        child.kill('SIGINT');
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('close', () => {
      const es = events(out.slice(0, out.lastIndexOf('\n') + 1));
      if (!es.some((e) => e.type === stopAt)) reject(new Error(`no ${stopAt} event: ${err}`));
      else resolve(es);
    });
  });
}

describe('one document count everywhere (the shared 261-page PDF)', () => {
  const pdf = sharedPath('data/pdf/debian-reference.en.pdf');
  const aidreams = sharedPath('models/aidreams260K-hf');
  const skip = pdf.skip || aidreams.skip;
  it('inspect, ask (plan and progress) and summarize give the library\'s count', { skip, timeout: 600_000 }, async () => {
    const env = { CTX_CACHE_DIR: scratchDir('counts-pdf') };
    const cited = await truth([pdf.path], aidreams.path, true);
    const report = JSON.parse(ctx(['inspect', '--json', '-m', aidreams.path, pdf.path], { env }).stdout);
    assert.equal(report.tokens.total, cited.tokens);
    assert.equal(report.tokens.markers.count, cited.markers);
    assert.equal(report.sources[0].pages, 261);
    const ask = await eventsUntil(['ask', pdf.path, 'What is APT?', '-m', aidreams.path, '--no-cache'], 'progress', env);
    assert.equal(only(ask, 'plan')[0]!.documentTokens, cited.tokens);
    assert.equal(only(ask, 'progress')[0]!.total, cited.tokens);
    const sum = await eventsUntil(['summarize', pdf.path, '-m', aidreams.path, '--no-cache'], 'plan', env);
    assert.equal(only(sum, 'plan')[0]!.documentTokens, cited.tokens);
  });
});

/**
 * The plan as prompt-plan.ts makes it (the source of truth for the plan line): prompt = prefix +
 * document + question (exactly, or the unknown-question allowance), and the strategy's numbers.
 */
async function truthPlan(inputs: string[], model: string, question: string | null, maxTokens: number) {
  const prepared = await prepareDocument({ inputs, model, cite: true, backend: 'reference', cache: false });
  try {
    const after = question === null ? null : `${question}${prepared.sources.instruction()}`;
    const p = planPrompt(planModelOf(prepared.loaded), prepared.format, undefined, prepared.tokens.count, after, { maxTokens });
    return { ...p, document: prepared.tokens.count, prompt: p.prefix.length + prepared.tokens.count + p.questionTokens, mix: prepared.loaded.model.config.beacon!.ratioMix };
  } finally {
    await prepared.close();
  }
}

describe("beacon's plan reason: every number says what it is (issue 13, new-user run)", () => {
  const demoDoc = join(REPO_ROOT, 'fixtures', 'demo', 'needle-8k.txt');
  it('inspect on the demo document: the ratio holds the prompt (not the document) and the checkpoint\'s answer reserve', async () => {
    const t = await truthPlan([demoDoc], 'needle-demo', null, 512);
    const r = t.plan.strategy;
    assert.ok(r.name === 'beacon', 'auto picks beacon for 8K tokens on the demo model');
    // the prompt is the document and more: the reason must not present it as the document's count
    assert.ok(t.prompt > t.document);
    const reason =
      `the model has beacon weights, and ratio ${r.ratio} holds ${n(r.ratioChoice.maxTokens)} tokens, ` +
      `enough for the prompt (${n(t.prompt)} tokens) and the checkpoint's answer reserve (${n(adaptReserve(t.mix))} tokens)`;
    assert.equal(t.plan.strategyReason, reason);
    assert.equal(t.prompt + adaptReserve(t.mix), r.ratioChoice.neededTokens);
    assert.equal(t.prompt + 512, t.plan.plannedTokens);
    const report = JSON.parse(ctx(['inspect', '--json', '-m', 'needle-demo', demoDoc]).stdout);
    assert.equal(report.plan.strategyReason, reason);
    assert.equal(report.plan.documentTokens, t.document);
    const text = ctx(['inspect', '-m', 'needle-demo', demoDoc]).stdout;
    assert.ok(text.includes(`auto: ${reason}\n`), text);
    assert.match(text, new RegExp(`planned tokens +${n(t.plan.plannedTokens)} = prefix ${t.prefix.length} .* \\+ document ${n(t.document)} \\+ question ≤ ${t.questionTokens} \\(assumed\\) \\+ answer 512`));
  });

  it('ask: the plan event gives the same reason, with the question known exactly; a larger --max-tokens is named as such', async () => {
    const q = 'recall Paula';
    for (const maxTokens of [2, 2000]) {
      const t = await truthPlan([demoDoc], 'needle-demo', q, maxTokens);
      const r = t.plan.strategy;
      assert.ok(r.name === 'beacon');
      const answer = maxTokens > adaptReserve(t.mix) ? `the answer budget (--max-tokens ${n(maxTokens)})` : `the checkpoint's answer reserve (${n(adaptReserve(t.mix))} tokens)`;
      const reason = `the model has beacon weights, and ratio ${r.ratio} holds ${n(r.ratioChoice.maxTokens)} tokens, enough for the prompt (${n(t.prompt)} tokens) and ${answer}`;
      assert.equal(t.plan.strategyReason, reason);
      const es = await eventsUntil(['ask', demoDoc, q, '-m', 'needle-demo', '--max-tokens', String(maxTokens), '--no-cache'], 'plan', {});
      const plan = only(es, 'plan')[0]!;
      assert.equal(plan.strategyReason, reason);
      assert.equal(plan.documentTokens, t.document);
    }
  });

  it('--strategy beacon with an answer budget its ratio cannot hold is refused before reading: exit 7, the numbers, --max-tokens', async () => {
    const t = await truthPlan([demoDoc], 'needle-demo', 'recall Paula', 100_000_000);
    const r = await truthPlan([demoDoc], 'needle-demo', 'recall Paula', 1);
    const s = r.plan.strategy;
    assert.ok(s.name === 'beacon');
    const most = s.ratioChoice.maxTokens - r.prompt;
    const run = ctx(['ask', demoDoc, 'recall Paula', '-m', 'needle-demo', '--strategy', 'beacon', '--max-tokens', '100000000', '--no-cache']);
    assert.equal(run.code, 7, run.stderr);
    assert.equal(
      run.stderr,
      `ctx: the answer budget of 100,000,000 tokens (--max-tokens) does not fit after the document and question (${n(t.prompt)} tokens): ` +
        `at most ${n(most)} answer tokens fit here (beacon at ratio ${s.ratio} holds ${n(s.ratioChoice.maxTokens)} tokens). Use --max-tokens ${n(most)} or less\n`,
    );
    const ok = await eventsUntil(['ask', demoDoc, 'recall Paula', '-m', 'needle-demo', '--strategy', 'beacon', '--max-tokens', String(most), '--no-cache'], 'plan', {});
    assert.equal(only(ok, 'plan').length, 1, 'the largest budget it names is accepted');
  });
});
