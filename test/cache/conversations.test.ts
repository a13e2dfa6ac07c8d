// Chat conversations kept for --continue: saved atomically per document key, forgotten when empty,
// and a damaged file is no conversation rather than an error.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ConversationStore } from '../../src/cache/conversations.js';
import { scratchDir } from '../helpers/fixtures.js';

describe('ConversationStore', () => {
  it('saves, loads and forgets a conversation by key; leaves no temp files', async () => {
    const store = new ConversationStore(join(scratchDir('conversations'), 'c'));
    assert.equal(await store.load('k'), null);
    const turns = [{ question: 'q?', answer: 'a.', reason: 'eos' as const, answerTokens: [5, 6], deferredToken: 2 }];
    await store.save('k', turns);
    const saved = await store.load('k');
    assert.deepEqual(saved?.turns, turns);
    assert.ok(!Number.isNaN(Date.parse(saved!.savedAt)));
    assert.deepEqual(readdirSync(store.dir), ['k.json']);
    await store.save('k', []);
    assert.equal(existsSync(store.pathOf('k')), false);
  });

  it('a damaged or foreign file is no conversation', async () => {
    const store = new ConversationStore(scratchDir('conversations-bad'));
    for (const text of ['{not json', '{"turns": "x"}', '{"turns": [{"question": 1}]}', '{"turns": [{"question": "q", "answer": "a", "answerTokens": [-1]}]}', '{"turns": []}']) {
      writeFileSync(store.pathOf('k'), text);
      assert.equal(await store.load('k'), null, text);
    }
  });
});
