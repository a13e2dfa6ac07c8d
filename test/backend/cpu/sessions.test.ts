// What loading leaves resident that no step reads goes back to the kernel (sessions.ts,
// releaseLoadLeftovers): the pages of weights.bin ONNX Runtime keeps mapped (MatMulNBits' scales,
// already packed beside the codes), and glibc's free heap. A step reads the same weights after as
// before: the logits do not change by a bit.
import assert from 'node:assert/strict';
import { readFileSync, realpathSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Embedding } from '../../../src/backend/cpu/embedding.js';
import { CpuBackend } from '../../../src/backend/cpu/index.js';
import { loadOrt, openSessions, releaseLoadLeftovers, releaseSessions } from '../../../src/backend/cpu/sessions.js';
import { convertedWeights } from '../../../src/backend/cpu/weights.js';
import { loadAddon } from '../../../src/backend/native/addon.js';
import { Session } from '../../../src/engine/session.js';
import { resolveStrategy } from '../../../src/engine/strategies/index.js';
import { tinyModel, tokens } from '../../helpers/models.js';
import { testCacheDir } from './helpers.js';

/** KiB of `file` resident in this process's mappings of it (/proc/self/smaps). */
function residentKiB(file: string): number {
  let inFile = false;
  let kib = 0;
  for (const line of readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) inFile = header[1] === file;
    else if (inFile) kib += Number(/^Rss:\s+(\d+) kB/.exec(line)?.[1] ?? 0);
  }
  return kib;
}

const addon = loadAddon();
const skip = process.platform !== 'linux' ? 'reads /proc/self/smaps (Linux)' : !addon?.releaseFilePages ? 'the native addon is not built with releaseFilePages' : false;

describe('releaseLoadLeftovers', { skip }, () => {
  it('q8: drops the mapped scales ORT keeps; a step reads the same logits after as before', async () => {
    const model = tinyModel('tiny-beacon', { hidden: 64, intermediate: 128, seed: 11 });
    const ort = await loadOrt();
    const weights = await convertedWeights(model, 'q8', testCacheDir());
    const sessions = await openSessions(ort, model, weights, 'f16', 2);
    const backend = new CpuBackend(model, 'q8', 'f16', ort, sessions, new Embedding(model, weights));
    const file = realpathSync(join(weights.dir, weights.layout.file));
    const doc = tokens(300, 5, 3, model.config.vocabSize);
    const read = async () => {
      const session = new Session(backend, resolveStrategy(model.config, { strategy: 'beacon' }, doc.length + 1));
      const logits = await session.feed(doc, { allLogits: true });
      session.dispose();
      return logits;
    };
    const before = await read();
    const loaded = residentKiB(file);
    assert.ok(loaded > 0, 'ORT keeps pages of weights.bin mapped after loading');
    releaseLoadLeftovers(weights);
    assert.equal(residentKiB(file), 0, 'no page of weights.bin resident after the release');
    const after = await read();
    assert.deepEqual(after, before);
    await releaseSessions(sessions);
    backend.embedding.close();
  });
});
