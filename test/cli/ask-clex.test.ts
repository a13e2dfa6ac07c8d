// `ctx ask` end to end on a CLEX model folder: the tiny-clex fixture (scripts/make-fixture-models.ts,
// written at test time) has the tensor names and config keys of the released CLEX checkpoints on a
// Llama base (window 64, max_factor 8: reach 512). The plan line shows t and the reach; past the
// reach `full` refuses before reading with the numbers; --rope clex is refused where it cannot apply.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fixtureModel } from '../../scripts/make-fixture-models.js';
import { WeightStore } from '../../src/model/weights.js';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'ctx.js');
let dir: string;
let doc: string;
let longDoc: string;
let clexModel: string;
let plainModel: string;

function ctx(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, CTX_CONFIG_DIR: join(dir, 'cache'), CTX_CACHE_DIR: join(dir, 'cache') } });
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ctx-ask-clex-'));
  doc = join(dir, 'doc.txt');
  longDoc = join(dir, 'long.txt');
  writeFileSync(doc, 'The fox jumps over the lazy dog. The answer is 42.\n'.repeat(6));
  writeFileSync(longDoc, 'The fox jumps over the lazy dog. The answer is 42.\n'.repeat(30));
  clexModel = fixtureModel('tiny-clex');
  plainModel = fixtureModel('tiny');
});
after(() => rmSync(dir, { recursive: true, force: true }));

describe('ctx ask on a CLEX model', () => {
  it('the fixture holds the three model.clex_layer tensors of a released CLEX checkpoint', () => {
    const w = WeightStore.open(clexModel);
    assert.deepEqual(w.info('model.clex_layer.inv_freq').shape, [4]);
    assert.deepEqual(w.info('model.clex_layer.proj_func.ode_up_proj').shape, [4, 8]);
    assert.deepEqual(w.info('model.clex_layer.proj_func.ode_down_proj').shape, [8, 4]);
  });

  for (const backend of ['cpu', 'reference']) {
    it(`answers with full attention past the 64-token window on ${backend}, t and the reach in the plan line`, () => {
      const r = ctx(['ask', doc, 'What is the answer?', '-m', clexModel, '--backend', backend, '--max-tokens', '6', '--json']);
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout);
      // The prompt (document + question) is between 3·64 and 4·64 tokens: t = 4 while reading and answering.
      assert.equal(out.strategy, 'full (rope clex: t 4 of 8, reach 512 = 64 × max_factor 8)');
      assert.ok(out.tokens.document > 64, `document of ${out.tokens.document} tokens exceeds the window`);
      assert.equal(out.tokens.generated, 6);
    });
  }

  it('--rope clex names the same run; the plan shows t rising when the answer crosses a multiple of the window', () => {
    const r = ctx(['ask', doc, 'What is the answer?', '-m', clexModel, '--rope', 'clex', '--max-tokens', '40', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).strategy, 'full (rope clex: t 4→5 of 8, reach 512 = 64 × max_factor 8)');
  });

  it('full past the reach refuses before reading, with the numbers (exit 7)', () => {
    const r = ctx(['ask', longDoc, 'What?', '-m', clexModel, '--strategy', 'full', '--max-tokens', '4']);
    assert.equal(r.status, 7, r.stderr);
    assert.match(r.stderr, /^ctx: the document does not fit: the run needs \d+ tokens .*; CLEX reaches 512 tokens on this model \(max_position_embeddings 64 × max_factor 8\)\. Use --strategy select/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  it('a document past the reach goes to select on its own', () => {
    const r = ctx(['ask', longDoc, 'What?', '-m', clexModel, '--max-tokens', '4', '--json']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(JSON.parse(r.stdout).strategy, /^select/);
  });

  it('--rope clex on a model without CLEX, and --rope-factor with it, are usage errors (exit 2)', () => {
    const plain = ctx(['ask', doc, 'What?', '-m', plainModel, '--rope', 'clex']);
    assert.equal(plain.status, 2);
    assert.match(plain.stderr, /^ctx: --rope clex needs a CLEX checkpoint .*this model has none\n$/);
    const factor = ctx(['ask', doc, 'What?', '-m', clexModel, '--rope', 'clex', '--rope-factor', '3']);
    assert.equal(factor.status, 2);
    assert.match(factor.stderr, /--rope-factor does not apply to --rope clex/);
  });

  it('ctx models info shows the scale factor rule and the reach', () => {
    const r = ctx(['models', 'info', clexModel]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^clex: +t = min\(ceil\(L \/ 64\), 8\) per forward call \(L = tokens so far\); reach 512 tokens \(64 x max_factor 8\); ODE tanh, param_factor 1$/m);
    assert.match(r.stdout, /^strategy: +full with CLEX up to 512 tokens, select beyond/m);
  });
});
