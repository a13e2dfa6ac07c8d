// The README's facts that ctx itself prints (issue 13.11): its offline demo answers 112 and prints
// the plan line the README quotes, with the reason auto chose select.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { REPO_ROOT, scratchDir } from '../helpers/fixtures.js';
import { ctx } from './spawn-ctx.js';

const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');

describe('the README', () => {
  it('the offline demo answers 112, and its plan line (with why auto picks beacon) is the one the README quotes', () => {
    const command = /`npx ctx (ask fixtures\/demo\/needle-30k\.txt "recall Paula" -m needle-demo)`/.exec(readme);
    assert.ok(command, 'the README names the offline demo command');
    const quoted = /says why on its plan line, the first line\s+on stderr: `([^`]+)`/.exec(readme);
    assert.ok(quoted, 'the README quotes the demo\'s plan line');
    const planLine = quoted[1]!.replace(/\s*\n\s*/g, ' ');
    const r = ctx(['ask', 'fixtures/demo/needle-30k.txt', 'recall Paula', '-m', 'needle-demo', '--no-cache'], { cwd: REPO_ROOT, env: { CTX_CACHE_DIR: scratchDir('readme-demo') } });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '112');
    assert.equal(r.stderr.split('\n')[0], planLine);
    assert.match(planLine, / · beacon v3 \(ratio 64, window 64\), auto: the model has beacon weights, and ratio 64 holds /);
  });
});
