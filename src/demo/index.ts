// ctx's built-in demo: a tiny Qwen2 + Activation Beacon model trained on a synthetic needle language
// (models/recipes/needle), and the generator of documents in that language.

import { fileURLToPath } from 'node:url';

export { askAbout, makeNeedleDocument, WORDS_PER_LINE, type Fact, type NeedleDocument, type NeedleOptions } from './needle.js';
export { mulberry32, randInt, type Rng } from './rng.js';
export { FILLERS, KEYS, QUERY, SPECIALS, VALUES, WORDS } from './vocab.js';

/** The demo model folder (models/needle-demo), from src/demo or dist/demo alike. */
export function demoModelDir(): string {
  return fileURLToPath(new URL('../../models/needle-demo', import.meta.url));
}

/** The committed ~30K-token demo document (fixtures/demo/needle-30k.txt). */
export function demoDocumentPath(): string {
  return fileURLToPath(new URL('../../fixtures/demo/needle-30k.txt', import.meta.url));
}
