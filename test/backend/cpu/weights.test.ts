// Converted weights in the cache: made once, reused, never reused half-written, old versions cleared.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CONVERTER_VERSION, convertedWeights } from '../../../src/backend/cpu/weights.js';
import { openModel } from '../../../src/model/model.js';
import { tinyModel, tinyModelDir } from '../../helpers/models.js';

/** Paths this process holds open (Linux); null where /proc is missing. */
function openPaths(): string[] | null {
  try {
    return readdirSync('/proc/self/fd').flatMap((fd) => {
      try {
        return [readlinkSync(`/proc/self/fd/${fd}`)];
      } catch {
        return [];
      }
    });
  } catch {
    return null;
  }
}

const cache = mkdtempSync(join(tmpdir(), 'ctx-weights-test-'));
after(() => rmSync(cache, { recursive: true, force: true }));

describe('converted weights', () => {
  const model = tinyModel('tiny', { seed: 21 });

  it('are converted once and then reused', () => {
    const notes: string[] = [];
    const a = convertedWeights(model, 'f32', cache, (m) => notes.push(m));
    assert.equal(notes.length, 1, 'the first call converts');
    const mtime = statSync(join(a.dir, 'weights.bin')).mtimeMs;
    const b = convertedWeights(model, 'f32', cache, (m) => notes.push(m));
    assert.equal(notes.length, 1, 'the second call reuses');
    assert.equal(b.dir, a.dir);
    assert.equal(statSync(join(b.dir, 'weights.bin')).mtimeMs, mtime);
    assert.ok(a.dir.endsWith(`-f32-v${CONVERTER_VERSION}`));
  });

  it('are converted again when the folder lacks its completion marker or a size differs', () => {
    const a = convertedWeights(model, 'q8', cache);
    const size = statSync(join(a.dir, 'weights.bin')).size;
    unlinkSync(join(a.dir, 'complete.json'));
    truncateSync(join(a.dir, 'weights.bin'), 100);
    let converted = false;
    convertedWeights(model, 'q8', cache, () => (converted = true));
    assert.ok(converted, 'a folder without complete.json is not trusted');
    assert.equal(statSync(join(a.dir, 'weights.bin')).size, size);

    truncateSync(join(a.dir, 'weights.bin'), size - 1); // marker present, size wrong
    converted = false;
    convertedWeights(model, 'q8', cache, () => (converted = true));
    assert.ok(converted, 'a truncated weights file is not trusted');
    assert.equal(statSync(join(a.dir, 'weights.bin')).size, size);
  });

  it('clear older converter versions and dead conversions of the same model', () => {
    const key = model.weights.fingerprint().slice(0, 32);
    const old = join(cache, 'onnx', `${key}-q4-v0`);
    const dead = join(cache, 'onnx', '.tmp-999999999-abcd');
    for (const d of [old, dead]) {
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'weights.bin'), 'x');
    }
    convertedWeights(model, 'q4', cache);
    assert.ok(!existsSync(old), 'older version removed');
    assert.ok(!existsSync(dead), 'dead temporary folder removed');
  });

  it('are private to the user: the folder 0700, its files 0600', () => {
    const { dir } = convertedWeights(model, 'f32', cache);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const f of readdirSync(dir)) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
  });

  it('close weights.bin and remove the temporary folder when a conversion fails (issue 21.8)', (t) => {
    if (openPaths() === null) return t.skip('no /proc/self/fd to list open files');
    const src = mkdtempSync(join(tmpdir(), 'ctx-weights-cut-'));
    t.after(() => rmSync(src, { recursive: true, force: true }));
    cpSync(tinyModelDir('tiny', { seed: 22 }), src, { recursive: true });
    const cut = openModel(src); // opened whole, then the weights are cut short under it
    const file = join(src, 'model.safetensors');
    truncateSync(file, statSync(file).size - 4096);
    const own = mkdtempSync(join(tmpdir(), 'ctx-weights-fail-'));
    t.after(() => rmSync(own, { recursive: true, force: true }));
    assert.throws(() => convertedWeights(cut, 'f32', own));
    assert.deepEqual(openPaths()!.filter((p) => p.includes(own)), [], 'no handle into the cache is left open');
    assert.deepEqual(readdirSync(join(own, 'onnx')), [], 'the temporary folder is gone');
  });
});
