// The safetensors reader trusts nothing in a header: hostile or truncated files are one clear error
// naming the file (and the tensor), never a crash or a huge allocation.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { CtxError } from '../../src/errors.js';
import { SafetensorsFile, toFloat32 } from '../../src/model/safetensors.js';
import { floatToHalf, writeSafetensors } from '../../src/model/safetensors-write.js';
import { WeightStore } from '../../src/model/weights.js';

const dir = mkdtempSync(join(tmpdir(), 'ctx-st-'));
let n = 0;

/** A file made of a raw header object and a data section. */
function rawFile(header: unknown, data: Buffer = Buffer.alloc(0), headerLength?: bigint): string {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLength ?? BigInt(json.length));
  const path = join(dir, `f${n++}.safetensors`);
  writeFileSync(path, Buffer.concat([len, json, data]));
  return path;
}

function rejects(path: string, pattern: RegExp): void {
  assert.throws(
    () => SafetensorsFile.open(path),
    (e: unknown) => e instanceof CtxError && e.kind === 'model' && e.message.startsWith(path) && pattern.test(e.message),
  );
}

describe('safetensors header validation', () => {
  it('reads a valid file and converts F32, F16 and BF16 to float32', () => {
    const path = join(dir, 'ok.safetensors');
    const data = Float32Array.from([1.5, -2, 0.25, 3]);
    writeSafetensors(path, [
      { name: 'a', shape: [2, 2], data },
      { name: 'h', shape: [4], data, dtype: 'F16' },
      { name: 'b', shape: [4], data, dtype: 'BF16' },
    ]);
    const f = SafetensorsFile.open(path);
    for (const name of ['a', 'h', 'b']) assert.deepEqual(toFloat32(f.tensors.get(name)!, f.readBytes(name)), data);
    assert.equal(floatToHalf(65504), 0x7bff);
  });

  it('refuses a file shorter than its 8-byte length prefix', () => {
    const path = join(dir, 'short.safetensors');
    writeFileSync(path, Buffer.alloc(4));
    rejects(path, /only 4 bytes/);
  });
  it('refuses a header shorter than "{}"', () => rejects(rawFile(''), /header length is smaller/));
  it('refuses a header length past the end of the file', () => rejects(rawFile({}, Buffer.alloc(0), 1000n), /runs past the end/));
  it('refuses a header length of 2^60 without allocating it', () => rejects(rawFile({}, Buffer.alloc(0), 1n << 60n), /exceeds/));
  it('refuses a header that is not JSON', () => rejects(rawFile('{"a": '), /not JSON/));
  it('refuses an unknown dtype', () => rejects(rawFile({ t: { dtype: 'Q4', shape: [1], data_offsets: [0, 1] } }, Buffer.alloc(1)), /tensor "t": unknown dtype/));
  it('refuses negative or fractional dimensions', () => rejects(rawFile({ t: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, Buffer.alloc(4)), /tensor "t": bad dimension/));
  it('refuses offsets outside the data section (truncated file)', () =>
    rejects(rawFile({ t: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, Buffer.alloc(8)), /tensor "t": .*outside the 8-byte data section/));
  it('refuses a byte length that does not match dtype × shape', () =>
    rejects(rawFile({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, Buffer.alloc(16)), /tensor "t": holds 16 bytes but F32 \[3\] needs 12/));
  it('refuses a shape whose size overflows', () =>
    rejects(rawFile({ t: { dtype: 'F32', shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, Buffer.alloc(4)), /tensor "t": shape is too large/));
  it('refuses overlapping tensors', () =>
    rejects(
      rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, Buffer.alloc(12)),
      /tensors "a" and "b" overlap/,
    ));
  it('refuses reversed offsets', () => rejects(rawFile({ t: { dtype: 'F32', shape: [0], data_offsets: [4, 0] } }, Buffer.alloc(4)), /reversed/));
});

describe('weights in shards', () => {
  it('opens the shards an index lists and checks the index against them', async () => {
    const d = mkdtempSync(join(tmpdir(), 'ctx-shards-'));
    writeSafetensors(join(d, 'model-00001-of-00002.safetensors'), [{ name: 'x', shape: [2], data: Float32Array.of(1, 2) }]);
    writeSafetensors(join(d, 'model-00002-of-00002.safetensors'), [{ name: 'y', shape: [1], data: Float32Array.of(3) }]);
    const index = { weight_map: { x: 'model-00001-of-00002.safetensors', y: 'model-00002-of-00002.safetensors' } };
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify(index));
    const w = WeightStore.open(d);
    assert.deepEqual([...w.float32('y')], [3]);
    assert.match(await w.fingerprint(), /^[0-9a-f]{64}$/);
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { x: 'model-00002-of-00002.safetensors', y: 'model-00002-of-00002.safetensors' } }));
    assert.throws(() => WeightStore.open(d), /index lists tensor "x" in model-00002-of-00002.safetensors, which does not hold it/);
    writeFileSync(join(d, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { x: '../../etc/passwd' } }));
    assert.throws(() => WeightStore.open(d), /is not a plain file name/);
  });

  it('a shape that disagrees with the caller is an error naming the tensor', () => {
    const d = mkdtempSync(join(tmpdir(), 'ctx-shape-'));
    writeSafetensors(join(d, 'model.safetensors'), [{ name: 'w', shape: [2, 3], data: new Float32Array(6) }]);
    assert.throws(() => WeightStore.open(d).float32('w', [3, 2]), /tensor "w" has shape \[2,3\] but the config implies \[3,2\]/);
  });

  it('a file cut short after its header is reported when the tensor is read', () => {
    const d = mkdtempSync(join(tmpdir(), 'ctx-cut-'));
    const p = join(d, 'model.safetensors');
    writeSafetensors(p, [{ name: 'w', shape: [64], data: new Float32Array(64) }]);
    const full = readFileSync(p);
    writeFileSync(p, full.subarray(0, full.length - 100));
    assert.throws(() => WeightStore.open(d), /outside the .*data section \(truncated file\?\)/);
  });
});
