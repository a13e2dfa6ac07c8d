// The README's offline main job, exactly as written there (with `npx ctx` run as bin/ctx.js): on a
// fresh clone with no network it must print the right answer. Also the 8K demo document on ctx's own
// choice of beacon ratio.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..');
const BIN = join(ROOT, 'bin', 'ctx.js');
const cacheDir = mkdtempSync(join(tmpdir(), 'ctx-readme-'));
after(() => rmSync(cacheDir, { recursive: true, force: true }));

/** Splits a shell command line of plain words and double-quoted strings. */
function shellWords(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]);
}

function ctx(args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    // No network: an attempt to download anything fails instead of hanging.
    env: { ...process.env, CTX_CACHE_DIR: cacheDir, CTX_CONFIG_DIR: cacheDir, HF_ENDPOINT: 'http://127.0.0.1:9' },
  });
}

describe("README's offline main job", () => {
  it('prints the number planted in the 30K-token demo document', () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const row = readme.split('\n').find((l) => l.includes('the main job, offline'));
    assert.ok(row, 'README has a row for the offline main job');
    const command = /`(npx ctx [^`]+)`/.exec(row)?.[1];
    assert.ok(command, `no command in: ${row}`);
    const args = shellWords(command).slice(2);
    const facts = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'demo', 'needle-30k.json'), 'utf8'));
    assert.ok(args.includes(facts.question), `the README asks ${JSON.stringify(facts.question)}`);
    const r = ctx(args);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), facts.answer);
    assert.ok(readme.includes(`\`${facts.answer}\``), 'the README states the answer');
  });

  it('answers the 8K demo document with beacons at the ratio ctx picks', () => {
    const facts = JSON.parse(readFileSync(join(ROOT, 'fixtures', 'demo', 'needle-8k.json'), 'utf8'));
    const r = ctx(['ask', 'fixtures/demo/needle-8k.txt', facts.question, '-m', 'needle-demo', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.answer.trim(), facts.answer);
    assert.match(out.strategy, /^beacon v3 \(ratio 16/); // 8,000 tokens in 1,024 positions: (1024 − 64)·16 + 64 = 15,424
  });
});
