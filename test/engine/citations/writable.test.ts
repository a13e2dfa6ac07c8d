// Citations are on by default, but a model whose vocabulary cannot write a source marker can neither
// read nor cite one: the demo model's word list has no brackets or digits, so "[line 40]" reaches it as
// unknown tokens. ctx then reads the document without markers and says so in the plan's notes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tokenizerWritesMarkers } from '../../../src/engine/citations/markers.js';
import { demoModelDir } from '../../../src/demo/index.js';
import { loadTokenizer } from '../../../src/model/tokenizer.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');

describe('citations and the model vocabulary', () => {
  it('a tokenizer writes markers when they survive encode → decode', async () => {
    const identity = { encode: (t: string) => [...t].map((c) => c.charCodeAt(0)), decode: (ids: ArrayLike<number>) => String.fromCharCode(...Array.from(ids)) };
    assert.equal(tokenizerWritesMarkers(identity), true);
    const demo = await loadTokenizer(demoModelDir());
    assert.equal(tokenizerWritesMarkers(demo), false, 'the demo vocabulary has no brackets or digits');
  });

  it('ask on the demo model reads without markers and says why in the plan notes', () => {
    const env = { ...process.env, CTX_CACHE_DIR: mkdtempSync(join(tmpdir(), 'ctx-cite-')) };
    const r = spawnSync(process.execPath, [join(ROOT, 'bin', 'ctx.js'), 'ask', 'fixtures/demo/needle-8k.txt', 'recall Walter', '-m', 'needle-demo', '--events', '--no-cache'], { cwd: ROOT, env, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const events = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(events.filter((e) => e.type === 'markers').length, 0, 'no markers were added');
    const plan = events.find((e) => e.type === 'plan');
    assert.ok(plan.notes.some((n: string) => n.startsWith('citations are off: this model\'s vocabulary cannot write source markers')), JSON.stringify(plan.notes));
    assert.equal(plan.documentTokens, 8000, 'the document as written, nothing added');
    assert.equal(events.find((e) => e.type === 'answer').answer.trim(), '360');
  });
});
