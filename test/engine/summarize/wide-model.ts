// The tiny fixture model with a longer window (random weights, the tiny byte-level tokenizer and its
// chat template). With 128 positions there is no room for a hierarchical step's prompt; 1,024 holds a
// page of the fixture PDF per step. Written once per test process into a temporary folder.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeTinyTokenizer } from '../../../scripts/make-tiny-tokenizer.js';
import { PRESETS, writeRandomModel } from '../../../tools/random-model.js';

const made = new Map<number, string>();

export function wideTinyModel(window = 1024): string {
  let dir = made.get(window);
  if (!dir) {
    const root = mkdtempSync(join(tmpdir(), 'ctx-wide-model-'));
    process.on('exit', () => rmSync(root, { recursive: true, force: true }));
    dir = join(root, `tiny-${window}`);
    const tok = writeTinyTokenizer(dir);
    writeRandomModel(dir, { ...PRESETS.tiny!, maxPositions: window, bos: tok.bosId, eos: tok.imEndId });
    made.set(window, dir);
  }
  return dir;
}
