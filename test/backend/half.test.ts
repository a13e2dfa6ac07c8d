// Half precision in JavaScript (src/backend/half.ts): float32 → half rounds to nearest even like
// ONNX Runtime's Cast (checked against it on every class of value), half → float32 is exact.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { Graph } from '../../src/backend/cpu/graph.js';
import { floatBits, fromHalf, halfBits, halfTable, toHalf } from '../../src/backend/half.js';

const dir = mkdtempSync(join(tmpdir(), 'ctx-half-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const bits = (x: number) => floatBits(Float32Array.of(x))[0];

describe('half precision', () => {
  it('converts known values', () => {
    const cases: Array<[number, number]> = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00], [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [1.5 * 2 ** -25, 0x0001], [1 / 3, 0x3555],
      [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], // ties to even
    ];
    for (const [x, h] of cases) assert.equal(halfBits(bits(x)), h, `half(${x})`);
    assert.ok(Number.isNaN(halfTable()[halfBits(bits(NaN))]), 'NaN stays NaN');
  });

  it('round-trips every half exactly', () => {
    const t = halfTable();
    for (let h = 0; h < 65536; h++) {
      if (Number.isNaN(t[h])) continue;
      assert.equal(halfBits(bits(t[h])), h, `half ${h.toString(16)}`);
    }
  });

  it('agrees with ONNX Runtime\'s Cast on random, subnormal and overflowing values', async () => {
    const n = 20000;
    const x = new Float32Array(n);
    const u = floatBits(x);
    let s = 12345;
    const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
    for (let i = 0; i < n; i++) u[i] = next();
    for (let i = 0; i < 2000; i++) x[i] = (next() / 2 ** 32 - 0.5) * 2 ** -12;
    for (let i = 2000; i < 4000; i++) x[i] = (next() / 2 ** 32 - 0.5) * 140000;
    for (let i = 4000; i < n; i++) if (Number.isNaN(x[i])) x[i] = 0;
    const g = new Graph('cast');
    g.output(g.op('Cast', [g.input('x', 'float', [n])], { to: 10 }), 'y', 'float16', [n]);
    const path = join(dir, 'cast.onnx');
    writeFileSync(path, g.encode());
    const session = await ort.InferenceSession.create(path);
    const y = (await session.run({ x: new ort.Tensor('float32', x, [n]) })).y.data as Uint16Array;
    await session.release();
    const ours = new Uint16Array(n);
    toHalf(u, 0, ours, 0, n);
    let differ = 0;
    for (let i = 0; i < n; i++) if (ours[i] !== y[i]) differ++;
    assert.equal(differ, 0, `${differ} of ${n} values convert differently`);
    const back = new Float32Array(n);
    fromHalf(ours, 0, back, 0, n);
    for (let i = 4000; i < n; i++) {
      if (Math.abs(x[i]) < 65504 && Math.abs(x[i]) > 2 ** -14) assert.ok(Math.abs(back[i] - x[i]) <= Math.abs(x[i]) * 2 ** -11, `${x[i]} → ${back[i]}`);
    }
  });
});
