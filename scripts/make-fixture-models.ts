// Writes the tiny random-weight fixture models (with the tiny byte-level tokenizer) that tests and
// the README's fixture examples use: fixtures/generated/models/{tiny,tiny-beacon,tiny-beacon-v1,tiny-focus,tiny-clex}.
// Deterministic: same files on every machine. Run: node --import tsx scripts/make-fixture-models.ts
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PRESETS, writeRandomModel } from '../tools/random-model.js';
import { writeTinyTokenizer } from './make-tiny-tokenizer.js';

export const FIXTURE_MODELS = ['tiny', 'tiny-beacon', 'tiny-beacon-v1', 'tiny-focus', 'tiny-clex'] as const;
export const FIXTURE_MODEL_ROOT = fileURLToPath(new URL('../fixtures/generated/models/', import.meta.url));

/** Makes the fixture model folder if missing; returns its path. */
export function fixtureModel(name: (typeof FIXTURE_MODELS)[number]): string {
  const dir = join(FIXTURE_MODEL_ROOT, name);
  if (!existsSync(join(dir, 'tokenizer.json'))) {
    const tok = writeTinyTokenizer(dir);
    writeRandomModel(dir, { ...PRESETS[name], bos: tok.bosId, eos: tok.imEndId });
  }
  return dir;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const name of FIXTURE_MODELS) console.log(fixtureModel(name));
}
