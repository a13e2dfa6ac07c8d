// The cpu KV store's snapshots share its arrays (src/backend/cpu/kv-store.ts): a snapshot's rows stay
// as they were while the store goes on appending, retaining and growing, and a store that restores a
// snapshot adopts its arrays only when no live store writes them.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SequenceSnapshot } from '../../../src/backend/contract.js';
import { KvStore } from '../../../src/backend/cpu/kv-store.js';
import { layerAsFloat32 } from '../../../src/backend/step/snapshot.js';

const LAYERS = 2;
const H = 2;
const D = 4;
const W = 2 * H * D; // one source row: keys [H, D] then values [H, D]

/** The value stored at (layer, row, key/value, head, column): small integers, exact in f16. */
function value(l: number, r: number, kv: number, g: number, d: number): number {
  return ((l * 7 + r * 5 + kv * 3 + g * 2 + d) % 61) - 30;
}

/** Appends rows whose contents name them (`ids`: what value() is computed from, per new row). */
function append(store: KvStore, ids: number[]): void {
  const M = store.rows;
  store.prepare(M + ids.length);
  for (let l = 0; l < LAYERS; l++) {
    const src = new Float32Array(ids.length * W);
    ids.forEach((id, i) => {
      for (let kv = 0; kv < 2; kv++) for (let g = 0; g < H; g++) for (let d = 0; d < D; d++) src[i * W + kv * H * D + g * D + d] = value(l, id, kv, g, d);
    });
    store.append(l, M, ids.length, src, W, 0, H * D);
  }
  store.rows = M + ids.length;
}

/** Checks every value of every row of a snapshot against the ids it should hold. */
function assertRows(s: SequenceSnapshot, ids: number[], what: string): void {
  assert.equal(s.rows, ids.length, `${what}: rows`);
  for (let l = 0; l < LAYERS; l++) {
    const k = layerAsFloat32(s.keys[l], s.rows, D);
    const v = layerAsFloat32(s.values[l], s.rows, D);
    ids.forEach((id, r) => {
      for (let g = 0; g < H; g++) {
        for (let d = 0; d < D; d++) {
          assert.equal(k[(r * H + g) * D + d], value(l, id, 0, g, d), `${what}: key of layer ${l} row ${r}`);
          assert.equal(v[(r * H + g) * D + d], value(l, id, 1, g, d), `${what}: value of layer ${l} row ${r}`);
        }
      }
    });
  }
}

function snap(store: KvStore): SequenceSnapshot {
  return { ...store.snapshot(), selectCache: Array.from({ length: LAYERS }, () => null) };
}

for (const dtype of ['f32', 'f16'] as const) {
  describe(`cpu KV store (${dtype}): snapshots share the arrays and never change`, () => {
    it('a snapshot copies nothing and keeps its rows while the store appends, retains and grows', () => {
      const store = new KvStore(dtype, LAYERS, H, D);
      append(store, [0, 1, 2, 3]);
      const s = snap(store);
      assert.equal(s.kvDtype, dtype);
      assert.equal(s.keys[0][0], store.layers[0].k[0], 'the snapshot holds the store arrays themselves');
      append(store, [4, 5]);
      assert.equal(store.layers[0].k[0], s.keys[0][0], 'rows past the snapshot are written in place');
      assertRows(s, [0, 1, 2, 3], 'after appending');
      assertRows(snap(store), [0, 1, 2, 3, 4, 5], 'the store after appending');

      // Moving rows below the snapshot's end copies the store first.
      store.retain(Int32Array.from([0, 2, 4, 5]));
      assert.notEqual(store.layers[0].k[0], s.keys[0][0]);
      assertRows(s, [0, 1, 2, 3], 'after a retain that moves rows');
      assertRows(snap(store), [0, 2, 4, 5], 'the store after the retain');
    });

    it('a prefix retain below the snapshot, then an append, leaves the snapshot as it was', () => {
      const store = new KvStore(dtype, LAYERS, H, D);
      append(store, [0, 1, 2, 3]);
      const s = snap(store);
      store.retain(Int32Array.from([0, 1]));
      append(store, [7, 8, 9]);
      assertRows(s, [0, 1, 2, 3], 'the snapshot');
      assertRows(snap(store), [0, 1, 7, 8, 9], 'the store');
    });

    it('a restore adopts the arrays only when no live store writes them, and appends past the snapshot', () => {
      const first = new KvStore(dtype, LAYERS, H, D);
      append(first, [0, 1, 2]);
      const s = snap(first);

      const second = new KvStore(dtype, LAYERS, H, D);
      second.restore(s);
      assert.notEqual(second.layers[0].k[0], s.keys[0][0], 'the first store still writes them: copied');
      append(second, [10]);
      append(first, [20]);
      assertRows(s, [0, 1, 2], 'the snapshot, with both stores going on');
      assertRows(snap(second), [0, 1, 2, 10], 'the second store');
      assertRows(snap(first), [0, 1, 2, 20], 'the first store');

      first.release();
      const third = new KvStore(dtype, LAYERS, H, D);
      third.restore(s);
      assert.equal(third.layers[0].k[0], s.keys[0][0], 'no store writes them now: adopted, not copied');
      const fourth = new KvStore(dtype, LAYERS, H, D);
      fourth.restore(s);
      assert.notEqual(fourth.layers[0].k[0], s.keys[0][0], 'the third store writes them now: copied');
      append(third, [30, 31]);
      append(fourth, [40]);
      assertRows(s, [0, 1, 2], 'the snapshot');
      assertRows(snap(third), [0, 1, 2, 30, 31], 'the third store');
      assertRows(snap(fourth), [0, 1, 2, 40], 'the fourth store');

      // The same store restoring the same snapshot again (clear() after an answer) goes back to it.
      third.restore(s);
      append(third, [50]);
      assertRows(s, [0, 1, 2], 'the snapshot after a second restore');
      assertRows(snap(third), [0, 1, 2, 50], 'the third store after a second restore');
    });
  });
}

describe('cpu KV store: snapshots across dtypes', () => {
  it('an f32 snapshot restored into f16 storage is converted (and back), values intact', () => {
    const f32 = new KvStore('f32', LAYERS, H, D);
    append(f32, [0, 1, 2]);
    const f16 = new KvStore('f16', LAYERS, H, D);
    f16.restore(snap(f32));
    assert.ok(f16.layers[0].k[0] instanceof Uint16Array);
    assertRows(snap(f16), [0, 1, 2], 'f16 from f32');
    const back = new KvStore('f32', LAYERS, H, D);
    back.restore(snap(f16));
    assert.ok(back.layers[0].k[0] instanceof Float32Array);
    assertRows(snap(back), [0, 1, 2], 'f32 from f16');
  });

  it('stores half the bytes per row in f16', () => {
    assert.equal(KvStore.bytesPerRow('f16', LAYERS, H, D) * 2, KvStore.bytesPerRow('f32', LAYERS, H, D));
  });
});
