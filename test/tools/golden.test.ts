// tools/golden.ts (npm run golden): unsupported kinds are reported and counted apart, never crash
// the run, and the exit status says what happened (0 all passed, 1 a failure, 3 only unsupported).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SHARED } from '../helpers/models.js';

const TOOL = join(import.meta.dirname, '..', '..', 'tools', 'golden.ts');
const run = (root: string) => spawnSync(process.execPath, ['--import', 'tsx', TOOL, root], { encoding: 'utf8' });

describe('npm run golden', () => {
  const root = mkdtempSync(join(tmpdir(), 'ctx-golden-tool-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  const addCase = (name: string, body: string) => {
    mkdirSync(join(root, 'cases', name), { recursive: true });
    writeFileSync(join(root, 'cases', name, 'case.json'), body);
  };

  it('reports a kind it does not run as "unsupported kind" and exits 3', () => {
    addCase('a-later', JSON.stringify({ name: 'a-later', kind: 'someday', model: 'models/none', input_ids: [4], greedy_steps: 0, expected_greedy_ids: [] }));
    const r = run(root);
    assert.equal(r.stdout, 'SKIP  a-later  unsupported kind someday\n0 passed, 0 failed, 1 unsupported\n');
    assert.equal(r.status, 3, r.stderr);
  });
  it('a case it cannot read is a failure naming the file, and the run goes on (exit 1)', () => {
    addCase('b-broken', '{"name": "b-broken"');
    const r = run(root);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], 'SKIP  a-later  unsupported kind someday');
    assert.match(lines[1], new RegExp(`^FAIL  ${root}/cases/b-broken: ${root}/cases/b-broken/case.json: `));
    assert.equal(lines[2], '0 passed, 1 failed, 1 unsupported');
    assert.equal(r.status, 1);
  });

  const seeds = join(SHARED, 'golden-seeds');
  it('runs ../shared/golden-seeds: the clex, focusllm and softplus cases pass', { skip: existsSync(seeds) ? false : `${seeds} is absent` }, () => {
    const r = run(seeds);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.filter((l) => /^PASS {2}clex-\S+ {2}max\|Δlogit\| /.test(l)).length, 4, r.stdout);
    assert.equal(lines.filter((l) => /^PASS {2}focusllm-\S+ /.test(l)).length, 3, r.stdout);
    assert.equal(lines.filter((l) => /^PASS {2}softplus-\S+ /.test(l)).length, 3, r.stdout);
    const skipped = lines.filter((l) => l.startsWith('SKIP  ')).length;
    const passed = lines.filter((l) => l.startsWith('PASS  ')).length;
    assert.equal(passed + skipped, 10, r.stdout);
    assert.equal(lines.at(-1), `${passed} passed, 0 failed${skipped ? `, ${skipped} unsupported` : ''}`);
    assert.equal(r.status, skipped ? 3 : 0, r.stderr);
  });
});
