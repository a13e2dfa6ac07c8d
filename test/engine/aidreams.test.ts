// A model with real trained weights: greedy decoding from BOS reproduces the ids recorded in
// ../shared/models/SOURCES.md (checked there against llama2.c run.c and transformers).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { it } from 'node:test';
import { createReferenceBackend } from '../../src/backend/reference/index.js';
import { openModel } from '../../src/model/model.js';
import { Session } from '../../src/engine/session.js';
import { resolveStrategy } from '../../src/engine/strategies/index.js';
import { SHARED } from '../helpers/models.js';

const dir = join(SHARED, 'models', 'aidreams260K-hf');
const FIRST_40 = [
  319, 459, 355, 260, 275, 429, 339, 315, 374, 327, 446, 262, 421, 392, 275, 280, 269, 440, 270, 283, 446, 299, 303, 266, 358, 430, 312,
  379, 441, 260, 446, 262, 421, 392, 275, 280, 269, 440, 270, 283,
];

it('aidreams260K greedy from BOS matches SOURCES.md', { skip: existsSync(dir) ? false : `${dir} is absent` }, async () => {
  const model = openModel(dir);
  const backend = await createReferenceBackend(model);
  const session = new Session(backend, resolveStrategy(model.config, { strategy: 'full' }, 41));
  const V = model.config.vocabSize;
  let logits = await session.feed(Int32Array.of(1));
  const ids: number[] = [];
  for (let i = 0; i < FIRST_40.length; i++) {
    let best = 0;
    for (let j = 1; j < V; j++) if (logits[j] > logits[best]) best = j;
    ids.push(best);
    logits = await session.feed(Int32Array.of(best), { decoding: true });
  }
  assert.deepEqual(ids, FIRST_40);
});
