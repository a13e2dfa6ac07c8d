// The registry that ships with ctx (models/registry.json) passes its own validation, and the CLEX
// entries are pinned to commits with the weights' checksums (issue 17).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findByRepo, loadRegistry, type HubEntry } from '../../src/model/registry.js';

describe('models/registry.json', () => {
  const registry = loadRegistry();
  it('loads and validates', () => assert.ok(registry.entries.length >= 10));
  it('lists each hub repo once', () => {
    const repos = registry.entries.filter((e): e is HubEntry => e.kind === 'hub').map((e) => e.hub.toLowerCase());
    assert.equal(new Set(repos).size, repos.length);
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
});
