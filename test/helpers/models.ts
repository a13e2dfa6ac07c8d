// Tiny random models for tests, written once per process into a temp folder.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openModel, type Model } from '../../src/model/model.js';
import { PRESETS, writeRandomModel, type RandomModelSpec } from '../../tools/random-model.js';
export { maxAbsDiff } from './compare.js';

let root: string | undefined;
const made = new Map<string, string>();

/** A model folder with random weights: a preset name plus overrides (deterministic per key). */
export function tinyModelDir(preset: keyof typeof PRESETS | string, overrides: Partial<RandomModelSpec> = {}): string {
  const key = `${preset}:${JSON.stringify(overrides)}`;
  let dir = made.get(key);
  if (!dir) {
    if (!root) {
      root = mkdtempSync(join(tmpdir(), 'ctx-test-models-'));
      const r = root;
      process.on('exit', () => rmSync(r, { recursive: true, force: true }));
    }
    dir = join(root, `m${made.size}`);
    writeRandomModel(dir, { ...PRESETS[preset], ...overrides });
    made.set(key, dir);
  }
  return dir;
}

export function tinyModel(preset: keyof typeof PRESETS | string, overrides: Partial<RandomModelSpec> = {}): Model {
  return openModel(tinyModelDir(preset, overrides));
}

/** Deterministic token ids in [lo, hi). */
export function tokens(n: number, seed = 7, lo = 3, hi = 300): Int32Array {
  let s = seed >>> 0 || 1;
  return Int32Array.from({ length: n }, () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return lo + (s % (hi - lo));
  });
}

/** ../shared beside the repo, or null with the reason tests print when skipping. */
export const SHARED = join(import.meta.dirname, '..', '..', '..', 'shared');
