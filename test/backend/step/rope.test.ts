// RoPE cos/sin tables of the TypeScript backends (src/backend/step/rope.ts).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RopeTables } from '../../../src/backend/step/rope.js';

describe('RopeTables', () => {
  it('rotates by fround(cos a)·scale, a = fround(p·θ_i), rotate-half layout', () => {
    const invFreq = Float32Array.of(1, 0.01);
    const t = new RopeTables(4);
    t.use({ invFreq, scale: 1.5 }, 3000);
    const x = Float32Array.of(0.5, -1, 2, 0.25, /* head 2 */ 1, 1, 1, 1);
    const out = new Float32Array(8);
    t.rotate(x, 0, out, 0, 2, 2500);
    const want = new Float32Array(8);
    for (let h = 0; h < 2; h++) {
      for (let i = 0; i < 2; i++) {
        const a = Math.fround(2500 * invFreq[i]);
        const c = Math.fround(Math.cos(a)) * 1.5;
        const s = Math.fround(Math.sin(a)) * 1.5;
        const [x1, x2] = [x[h * 4 + i], x[h * 4 + i + 2]];
        want[h * 4 + i] = x1 * c - x2 * s;
        want[h * 4 + i + 2] = x2 * c + x1 * s;
      }
    }
    assert.deepEqual(out, want);
    t.rotate(x, 0, out, 0, 1, 2500, 1);
    assert.notDeepEqual(out.subarray(0, 4), want.subarray(0, 4), 'an explicit scale overrides the table\'s');
  });

  it('says when the frequencies or the scale change (rotated keys are then stale)', () => {
    const t = new RopeTables(4);
    const a = { invFreq: Float32Array.of(1, 0.5), scale: 1 };
    assert.equal(t.use(a, 10), true);
    assert.equal(t.use({ invFreq: Float32Array.of(1, 0.5), scale: 1 }, 5000), false, 'equal values, another array');
    assert.equal(t.use({ invFreq: Float32Array.of(1, 0.25), scale: 1 }, 10), true);
    assert.equal(t.use({ invFreq: Float32Array.of(1, 0.25), scale: 2 }, 10), true);
    assert.equal(t.scale, 2);
  });
});
