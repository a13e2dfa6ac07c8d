// `ctx ask`, `summarize` and `chat` end to end on the reference backend with a tiny fixture model,
// every strategy, on a document longer than the model's 128-token window.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fixtureModel } from '../../scripts/make-fixture-models.js';
import { writeTinyTokenizer } from '../../scripts/make-tiny-tokenizer.js';
import { PRESETS, writeRandomModel } from '../../tools/random-model.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'ctx.js');
let doc: string;
let beaconModel: string;
let plainModel: string;
let focusModel: string;

let cacheDir: string;
function ctx(args: string[], input?: string) {
  return spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', env: { ...process.env, CTX_CONFIG_DIR: cacheDir, CTX_CACHE_DIR: cacheDir } });
}

before(() => {
  const dir = mkdtempSync(join(tmpdir(), 'ctx-ask-'));
  cacheDir = join(dir, 'cache');
  doc = join(dir, 'doc.txt');
  writeFileSync(doc, 'The fox jumps over the lazy dog. The answer is 42.\n'.repeat(12));
  beaconModel = fixtureModel('tiny-beacon');
  plainModel = fixtureModel('tiny');
  focusModel = fixtureModel('tiny-focus');
});

describe('ctx ask: the prompt format', () => {
  it('--raw and --template choose it (a plan note says so); both together are a usage error', () => {
    const raw = ctx(['ask', doc, 'What is the answer?', '-m', plainModel, '--strategy', 'select', '--max-tokens', '3', '--raw', '--no-cite']);
    assert.equal(raw.status, 0, raw.stderr);
    assert.match(raw.stderr, /note: prompt: plain text \(--raw\): the document, a blank line, the question/);
    const named = ctx(['ask', doc, 'What is the answer?', '-m', plainModel, '--strategy', 'select', '--max-tokens', '3', '--template', 'llama3', '--no-cite']);
    assert.equal(named.status, 0, named.stderr);
    assert.match(named.stderr, /note: prompt: the llama3 chat template \(--template\)/);
    const both = ctx(['ask', doc, 'q', '-m', plainModel, '--raw', '--template', 'chatml']);
    assert.equal(both.status, 2);
    assert.equal(both.stderr, 'ctx: --raw and --template both set the prompt format: choose one\n');
  });
});

describe('ctx ask', () => {
  for (const strategy of ['beacon', 'select', 'stream']) {
    it(`streams an answer with --strategy ${strategy} past the window`, () => {
      const r = ctx(['ask', doc, 'What is the answer?', '-m', beaconModel, '--strategy', strategy, '--max-tokens', '6', '--json']);
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.finishReason === 'length' || out.finishReason === 'eos', true);
      assert.ok(out.tokens.document > 128, `document of ${out.tokens.document} tokens exceeds the window`);
      assert.match(out.strategy, new RegExp(`^${strategy}`));
      assert.equal(out.backend, 'cpu', 'cpu is the default backend without a GPU');
    });
  }

  for (const backend of ['cpu', 'reference']) {
    it(`--strategy focus on a FocusLLM model (random candidate projections), ${backend} backend, from the cache the second time`, () => {
      const args = ['ask', doc, 'What is the answer?', '-m', focusModel, '--strategy', 'focus', '--backend', backend, '--max-tokens', '5', '--json'];
      const runs = [ctx(args), ctx(args)];
      for (const r of runs) assert.equal(r.status, 0, r.stderr);
      const [first, second] = runs.map((r) => JSON.parse(r.stdout));
      assert.match(first.strategy, /^focus \(local window 32, chunks of 24, from 96 tokens\)$/);
      assert.ok(first.tokens.document > 96, 'past the chunking threshold');
      assert.equal(first.tokens.generated, 5);
      assert.ok(first.kv.rows > first.tokens.document, 'its KV is not reduced: every chunk holds the tail and the answer');
      assert.deepEqual([second.timings.cached, second.answer, second.kv], [true, first.answer, first.kv]);
    });
  }

  it('ctx inspect shows focus\'s KV and per-token re-encoding against select and beacon', () => {
    const r = ctx(['inspect', doc, '-m', focusModel, '--strategy', 'focus', '--json']);
    assert.equal(r.status, 7, 'the default 512-token answer reserve needs more positions than the model has');
    const plan = JSON.parse(r.stdout).plan;
    assert.match(plan.notes[0], /^focus: \d+ chunks of ≤ 24 \+ tail 24, local window 32; KV [\d,]+ rows\/layer after 512 tokens \(select: [\d,]+, beacon at ratio 8: ≈ [\d,]+\); each token re-encodes [\d,]+ rows \(select and beacon: 1\)$/);
    assert.match(plan.reason, /^the answer budget of 512 tokens \(--max-tokens\) does not fit .*: at most [\d,]+ answer tokens fit here \(focus would use [\d,]+ positions; the model has 128\)/);
  });

  it('--strategy focus on a model without FocusLLM weights is one line with exit 2', () => {
    const r = ctx(['ask', doc, 'What?', '-m', plainModel, '--strategy', 'focus']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^ctx: the focus strategy needs a FocusLLM checkpoint .*\n$/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  it('a --dtype the backend does not run is one line with exit 2 naming those it does, never a silent fall back', () => {
    const bf16 = ctx(['ask', doc, 'What?', '-m', plainModel, '--dtype', 'bf16']);
    assert.equal(bf16.status, 2, bf16.stderr);
    assert.equal(bf16.stderr, 'ctx: the cpu backend (the default) runs --dtype f32, q8 or q4, not "bf16"; bf16 runs on --backend cuda\n');
    const q8 = ctx(['ask', doc, 'What?', '-m', plainModel, '--backend', 'reference', '--dtype', 'q8']);
    assert.equal(q8.status, 2, q8.stderr);
    assert.equal(q8.stderr, 'ctx: the reference backend runs --dtype f32, not "q8"; q8 runs on --backend cpu\n');
  });

  it('the plan line says why auto chose the strategy, in plain mode and in --json; nothing when --strategy names it (issue 13.11)', () => {
    const auto = ctx(['ask', doc, 'What is the answer?', '-m', plainModel, '--max-tokens', '3']);
    assert.equal(auto.status, 0, auto.stderr);
    assert.match(auto.stderr, /^[\d,]+ tokens · select \(.*\), auto: the prompt and answer \([\d,]+ tokens\) are past its 128-token window, and it has no beacon weights · KV /m);
    const beacon = JSON.parse(ctx(['ask', doc, 'What is the answer?', '-m', beaconModel, '--max-tokens', '3', '--json']).stdout);
    assert.match(beacon.strategyReason, /^the model has beacon weights, and ratio \d+ holds [\d,]+ tokens, enough for the prompt \([\d,]+ tokens\) and the checkpoint's answer reserve \([\d,]+ tokens\)$/);
    const named = ctx(['ask', doc, 'What is the answer?', '-m', plainModel, '--strategy', 'select', '--max-tokens', '3']);
    assert.equal(named.status, 0, named.stderr);
    assert.match(named.stderr, /^[\d,]+ tokens · select \([^\n]*\) · KV /m);
    assert.doesNotMatch(named.stderr, /auto:/);
  });

  it('runs on the reference backend when asked', () => {
    const r = ctx(['ask', doc, 'What is the answer?', '-m', beaconModel, '--backend', 'reference', '--max-tokens', '4', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).backend, 'reference');
  });

  it('full past the window refuses before reading, with the numbers (exit 7)', () => {
    const r = ctx(['ask', doc, 'What is the answer?', '-m', plainModel, '--strategy', 'full']);
    assert.equal(r.status, 7);
    assert.match(r.stderr, /^ctx: the document does not fit: .*holds 128/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  it('full with YaRN scaling reads it', () => {
    const r = ctx(['ask', doc, 'What?', '-m', plainModel, '--strategy', 'full', '--rope', 'yarn', '--rope-factor', '4', '--max-tokens', '3', '-q']);
    assert.equal(r.status, 0, r.stderr);
  });

  it('reads piped stdin as the document, the question from the arguments', () => {
    const r = ctx(['ask', 'What is the answer?', '-m', beaconModel, '--max-tokens', '4', '--json'], 'The answer is 42.\n'.repeat(20));
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).sources[0].path, '-');
  });

  it('a missing model folder is one line with exit 5', () => {
    const r = ctx(['ask', doc, 'q', '-m', '/nonexistent/model']);
    assert.equal(r.status, 5);
    assert.equal(r.stderr, 'ctx: /nonexistent/model: model folder does not exist\n');
  });
});

describe('ctx summarize and chat', () => {
  it('summarize reads the whole document and answers', () => {
    const r = ctx(['summarize', doc, '-m', beaconModel, '--max-tokens', '4', '--length', 'short', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(JSON.parse(r.stdout).tokens.document > 128);
  });

  it('chat answers each line of piped questions, reading the document once', () => {
    const r = ctx(['chat', doc, '-m', beaconModel, '--max-tokens', '3', '--json'], 'first?\nsecond?\n');
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.turns.map((t: { question: string }) => t.question), ['first?', 'second?']);
  });
});

describe('ctx inspect --devices', () => {
  it('lists the cpu backend and either the GPUs or why there is none', () => {
    const r = ctx(['inspect', '--devices', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.ok(out.cpu.threads >= 1);
    if (out.cuda.available) assert.ok(out.cuda.devices.length > 0 && out.cuda.devices[0].name);
    else assert.match(out.cuda.reason, /\w+/);
  });
});

describe('ctx ask --stop', () => {
  it('ends the answer where a stop text appears, and never prints the stop text', () => {
    const base = ['ask', doc, 'What?', '-m', plainModel, '--backend', 'reference', '--strategy', 'select', '--max-tokens', '30', '--json', '-q'];
    const free = JSON.parse(ctx(base).stdout);
    // The random tiny model's free answer is a few characters before its EOS: stop at its 3rd and 4th.
    assert.ok(free.answer.length >= 4, `the free answer ${JSON.stringify(free.answer)} is too short to hold a stop text`);
    const stop = free.answer.slice(2, 4);
    const r = JSON.parse(ctx([...base, '--stop', stop]).stdout);
    assert.equal(r.finishReason, 'stop');
    assert.equal(r.answer, free.answer.slice(0, free.answer.indexOf(stop)));
  });
});

describe('ctx ask with a softplus-attention model', () => {
  let softplusModel: string;
  before(() => {
    softplusModel = join(mkdtempSync(join(tmpdir(), 'ctx-ask-softplus-')), 'model');
    const tok = writeTinyTokenizer(softplusModel);
    writeRandomModel(softplusModel, { ...PRESETS.tiny, bos: tok.bosId, eos: tok.imEndId, softplus: { scale: 'log_head_dim_x_log_n', reweight: { p: 15, offset: 1, noOffsetFirstRows: 3 } } });
  });

  it('runs under select on cpu, and the plan names the attention; --softplus-reweight changes it', () => {
    for (const [flag, want] of [[[], 'LSSAR p=15'], [['--softplus-reweight', '3'], 'LSSAR p=3'], [['--softplus-reweight', 'off'], 'LSSA']] as const) {
      const r = ctx(['ask', doc, 'What is the answer?', '-m', softplusModel, '--strategy', 'select', '--max-tokens', '4', '--json', ...flag]);
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      assert.equal(out.backend, 'cpu');
      assert.match(out.strategy, new RegExp(`^select \\(.*\\), softplus attention \\(${want.replace(/[()=]/g, '\\$&')}\\)$`));
    }
  });

  it('--backend cuda refuses it in one line naming the model folder (exit 2)', () => {
    const r = ctx(['ask', doc, 'What?', '-m', softplusModel, '--backend', 'cuda']);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr, `ctx: ${softplusModel}: softplus attention (LSSAR p=15) is not supported by the cuda backend (its kernels compute softmax attention only); use --backend cpu\n`);
  });

  it('--softplus-reweight on a softmax model, or with a bad value, is a usage error (exit 2)', () => {
    const r = ctx(['ask', doc, 'What?', '-m', plainModel, '--softplus-reweight', '15']);
    assert.equal(r.status, 2, r.stderr);
    assert.equal(r.stderr, `ctx: --softplus-reweight applies to softplus-attention models; ${plainModel} uses softmax attention (its config.json has no "attention_type": "softplus")\n`);
    const bad = ctx(['ask', doc, 'What?', '-m', softplusModel, '--softplus-reweight', 'on']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--softplus-reweight.*expected "off" or a power p in \(0, 1000\]/);
  });
});
