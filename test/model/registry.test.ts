// The registry that ships with ctx (models/registry.json) passes its own validation, every hub
// entry is pinned to a commit whose files its sizes and checksums describe, or says why no commit is
// known and then claims no checksum (issue 13.10), and the CLEX entries are pinned to commits with
// the weights' checksums (issue 17).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CtxError } from '../../src/errors.js';
import { findByRepo, findEntry, loadRegistry, parseRegistry, type HubEntry } from '../../src/model/registry.js';
import { openModel } from '../../src/model/model.js';

describe('models/registry.json', () => {
  const registry = loadRegistry();
  it('loads and validates', () => assert.ok(registry.entries.length >= 10));
  it('lists each hub repo once', () => {
    const repos = registry.entries.filter((e): e is HubEntry => e.kind === 'hub').map((e) => e.hub.toLowerCase());
    assert.equal(new Set(repos).size, repos.length);
  });
  it('every hub entry pins a commit, or says why none is known and claims no checksum', () => {
    const hub = registry.entries.filter((e): e is HubEntry => e.kind === 'hub');
    for (const e of hub) {
      if (e.pinned) {
        assert.match(e.revision, /^[0-9a-f]{40}$/, e.name);
        assert.equal(e.unpinned, undefined, e.name);
        continue;
      }
      assert.ok(e.unpinned && e.unpinned.length > 20, `${e.name}: a branch revision ("${e.revision}") needs the reason no commit is known`);
      assert.ok(e.files.every((f) => f.sha256 === null), `${e.name}: no checksum without a commit`);
    }
    // The ones this session could not pin; each names why. Shrink this list as commits are found.
    assert.deepEqual(hub.filter((e) => !e.pinned).map((e) => e.name), ['beacon-qwen-2-7b-instruct', 'activation-beacon-llama2-7b-chat']);
    // Every weights file of a pinned model that the hub serves ungated has its checksum.
    for (const name of ['qwen2.5-0.5b-instruct', 'qwen2.5-1.5b-instruct', 'qwen2.5-7b-instruct', 'llama-3.2-1b-instruct']) {
      const e = hub.find((x) => x.name === name)!;
      assert.ok(e.files.filter((f) => f.path.endsWith('.safetensors')).every((f) => f.sha256 !== null), `${name}: weights checksums`);
    }
  });

  it('the loader refuses a checksum on a branch revision, and "unpinned" on a commit', () => {
    const entry = (revision: string, extra: object, sha256: string | null) => ({
      models: [{ name: 'm', hub: 'a/b', revision, recommendedStrategy: 'select', license: 'x', ...extra, files: [{ path: 'w.safetensors', size: null, sha256 }] }],
    });
    const refuses = (json: unknown, pattern: RegExp) => assert.throws(() => parseRegistry(json, 'reg.json', '/'), (e: unknown) => e instanceof CtxError && pattern.test(e.message));
    refuses(entry('main', { unpinned: 'none known' }, 'a'.repeat(64)), /has a sha256 but the revision "main" is a branch: a checksum belongs to a commit/);
    refuses(entry('c'.repeat(40), { unpinned: 'none known' }, null), /"unpinned" given for a pinned revision/);
    assert.equal((parseRegistry(entry('c'.repeat(40), {}, 'a'.repeat(64)), 'reg.json', '/').entries[0] as HubEntry).pinned, true);
  });

  it('CLEX entries: pinned revisions, every weight shard with its sha256, the reach in the notes', () => {
    const want: Array<[string, number, string]> = [
      ['DAMO-NLP-SG/CLEX-LLaMA-2-7B-64K', 3, '262,144'],
      ['DAMO-NLP-SG/CLEX-7B-Chat-16K', 2, '65,536'],
      ['DAMO-NLP-SG/CLEX-Phi-2-32K', 2, '131,072'],
    ];
    for (const [repo, shards, reach] of want) {
      const e = findByRepo(registry, repo);
      assert.ok(e, repo);
      assert.ok(e.pinned, `${repo} is pinned to a commit`);
      const weights = e.files.filter((f) => /\.(safetensors|bin)$/.test(f.path));
      assert.equal(weights.length, shards, repo);
      assert.ok(weights.every((f) => f.sha256 !== null), `${repo}: every shard has a checksum`);
      assert.ok(e.notes?.some((n) => n.includes(reach)), `${repo}: notes give the reach ${reach}`);
    }
    assert.equal(findByRepo(registry, 'DAMO-NLP-SG/CLEX-Phi-2-32K')!.arch, 'phi');
  });
  it('the demo variants ship as local models ctx opens by name (models/recipes/variants)', () => {
    const want: Array<[string, string]> = [['needle-clex', 'full'], ['needle-lssa', 'full'], ['needle-softmax', 'full'], ['needle-focus', 'focus']];
    for (const [name, strategy] of want) {
      const e = findEntry(registry, name);
      assert.ok(e && e.kind === 'local', name);
      assert.equal(e.recommendedStrategy, strategy);
      assert.ok(existsSync(join(e.dir, 'model.safetensors')), `${e.dir} ships`);
      const c = openModel(e.dir).config;
      if (name === 'needle-clex') assert.equal(c.ropeScaling?.type, 'clex');
      if (name === 'needle-lssa') assert.ok(c.softplus);
      if (name === 'needle-softmax') assert.equal(c.softplus ?? null, null);
      if (name === 'needle-focus') assert.ok(c.focus);
    }
  });
});
