// Converted weights in the cache: made once, reused, never reused half-written, old versions cleared.
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Embedding } from '../../../src/backend/cpu/embedding.js';
import { BLOCK, CONVERTER_VERSION, convertedWeights, storedLinear, WIDE_BLOCK } from '../../../src/backend/cpu/weights.js';
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

  it('are converted once and then reused', async () => {
    const notes: string[] = [];
    const a = await convertedWeights(model, 'f32', cache, (m) => notes.push(m));
    assert.equal(notes.length, 1, 'the first call converts');
    const mtime = statSync(join(a.dir, 'weights.bin')).mtimeMs;
    const b = await convertedWeights(model, 'f32', cache, (m) => notes.push(m));
    assert.equal(notes.length, 1, 'the second call reuses');
    assert.equal(b.dir, a.dir);
    assert.equal(statSync(join(b.dir, 'weights.bin')).mtimeMs, mtime);
    assert.ok(a.dir.endsWith(`-f32-v${CONVERTER_VERSION}`));
  });

  it('are converted again when the folder lacks its completion marker or a size differs', async () => {
    const a = await convertedWeights(model, 'q8', cache);
    const size = statSync(join(a.dir, 'weights.bin')).size;
    unlinkSync(join(a.dir, 'complete.json'));
    truncateSync(join(a.dir, 'weights.bin'), 100);
    let converted = false;
    await convertedWeights(model, 'q8', cache, () => (converted = true));
    assert.ok(converted, 'a folder without complete.json is not trusted');
    assert.equal(statSync(join(a.dir, 'weights.bin')).size, size);

    truncateSync(join(a.dir, 'weights.bin'), size - 1); // marker present, size wrong
    converted = false;
    await convertedWeights(model, 'q8', cache, () => (converted = true));
    assert.ok(converted, 'a truncated weights file is not trusted');
    assert.equal(statSync(join(a.dir, 'weights.bin')).size, size);
  });

  it('clear older converter versions and dead conversions of the same model', async () => {
    const key = (await model.weights.fingerprint()).slice(0, 32);
    const old = join(cache, 'onnx', `${key}-q4-v0`);
    const dead = join(cache, 'onnx', '.tmp-999999999-abcd');
    for (const d of [old, dead]) {
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'weights.bin'), 'x');
    }
    await convertedWeights(model, 'q4', cache);
    assert.ok(!existsSync(old), 'older version removed');
    assert.ok(!existsSync(dead), 'dead temporary folder removed');
  });

  it('are private to the user: the folder 0700, its files 0600', async () => {
    const { dir } = await convertedWeights(model, 'f32', cache);
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    for (const f of readdirSync(dir)) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
  });

  it('close weights.bin and remove the temporary folder when a conversion fails (issue 21.8)', async (t) => {
    if (openPaths() === null) return t.skip('no /proc/self/fd to list open files');
    const src = mkdtempSync(join(tmpdir(), 'ctx-weights-cut-'));
    t.after(() => rmSync(src, { recursive: true, force: true }));
    cpSync(tinyModelDir('tiny', { seed: 22 }), src, { recursive: true });
    const cut = openModel(src); // opened whole, then the weights are cut short under it
    const file = join(src, 'model.safetensors');
    truncateSync(file, statSync(file).size - 4096);
    const own = mkdtempSync(join(tmpdir(), 'ctx-weights-fail-'));
    t.after(() => rmSync(own, { recursive: true, force: true }));
    await assert.rejects(convertedWeights(cut, 'f32', own));
    assert.deepEqual(openPaths()!.filter((p) => p.includes(own)), [], 'no handle into the cache is left open');
    assert.deepEqual(readdirSync(join(own, 'onnx')), [], 'the temporary folder is gone');
  });

  it('q8: every linear 8-bit (attention in blocks of BLOCK, MLP and head of WIDE_BLOCK); q4: MLP and head 4-bit', async () => {
    for (const dtype of ['q8', 'q4'] as const) {
      const { layout } = await convertedWeights(model, dtype, cache);
      for (const name of Object.keys(layout.linears)) {
        const s = storedLinear(layout, name);
        assert.equal(s.kind, 'nbits', `${dtype} ${name}`);
        const wide = /\.(gate|up|down)$|^lmHead$/.test(name);
        const expected = dtype === 'q8' ? { bits: 8, block: wide ? WIDE_BLOCK : BLOCK } : { bits: wide ? 4 : 8, block: BLOCK };
        assert.deepEqual(layout.formats?.[name], expected, `${dtype} ${name}`);
      }
      assert.ok(layout.linears['0.qkv'] && layout.linears.lmHead);
    }
  });

  it('q8 embeddings come from an 8-bit table (the LM head itself when tied), within half a step of the float rows', async () => {
    for (const m of [model, tinyModel('tiny', { seed: 22, tie: true })]) await checkEmbedding(m);
  });
});

async function checkEmbedding(model: ReturnType<typeof tinyModel>): Promise<void> {
  {
    const { layout, dir } = await convertedWeights(model, 'q8', cache);
    assert.equal(layout.embedTable, model.config.tieWordEmbeddings ? 'lmHead' : 'embed');
    const table = new Embedding(model, { layout, dir });
    const float = new Embedding(model);
    const H = model.config.hiddenSize;
    const a = new Float32Array(H);
    const b = new Float32Array(H);
    for (const id of [0, 7, model.config.vocabSize - 1]) {
      table.row(id, a, 0);
      float.row(id, b, 0);
      let m = 0;
      for (let i = 0; i < H; i++) m = Math.max(m, Math.abs(b[i]));
      for (let i = 0; i < H; i++) assert.ok(Math.abs(a[i] - b[i]) <= (0.5 * m) / 127 + 1e-7, `row ${id} [${i}]: ${a[i]} vs ${b[i]}`);
    }
    table.close();
    float.close();
  }
}
