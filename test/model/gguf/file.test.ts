// The GGUF reader trusts nothing in a header: every hostile or truncated file is one CtxError of
// kind "model" naming the file and the cause, never a crash, a hang or a huge allocation.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { CtxError } from '../../../src/errors.js';
import { ggufModelConfig } from '../../../src/model/gguf/config.js';
import { GgufFile } from '../../../src/model/gguf/file.js';
import { gv, writeGguf, type GgufTensorToWrite, type GgufValue } from '../../../src/model/gguf/write.js';
import { scratchPath } from './helpers.js';

const F32x8 = new Uint8Array(32);

/** A valid small file: two F32 tensors and a few keys. */
function validFile(meta: Record<string, GgufValue> = {}, tensors?: GgufTensorToWrite[]): string {
  const path = scratchPath('f.gguf');
  writeGguf(
    path,
    { 'general.architecture': gv.str('qwen2'), 'some.count': gv.u32(7), 'some.list': gv.strings(['a', 'b']), ...meta },
    tensors ?? [
      { name: 'first', ne: [8], type: 'F32', data: F32x8 },
      { name: 'second', ne: [4, 2], type: 'F32', data: F32x8 },
    ],
  );
  return path;
}

/** The file's bytes with `patch` applied, written to a new file. */
function patched(path: string, patch: (b: Buffer) => Buffer | void): string {
  const b = Buffer.from(readFileSync(path));
  const out = patch(b) ?? b;
  const p = scratchPath('patched.gguf');
  writeFileSync(p, out);
  return p;
}

/** Byte offset just after the name of tensor `name` in the tensor table (where n_dims starts). */
function afterName(b: Buffer, name: string): number {
  const at = b.indexOf(Buffer.from(name, 'utf8'), 24);
  assert.ok(at > 0);
  return at + name.length;
}

async function rejects(path: string, pattern: RegExp): Promise<void> {
  await assert.rejects(GgufFile.open(path), (e: unknown) => {
    assert.ok(e instanceof CtxError, `not a CtxError: ${String(e)}`);
    assert.equal(e.kind, 'model');
    assert.ok(e.message.startsWith(path), e.message);
    assert.match(e.message, pattern);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

describe('GGUF header validation', () => {
  it('reads a valid file: metadata by type and tensors at aligned offsets', async () => {
    const f = await GgufFile.open(validFile());
    assert.equal(f.string('general.architecture'), 'qwen2');
    assert.equal(f.uint('some.count'), 7);
    assert.deepEqual(f.strings('some.list'), ['a', 'b']);
    assert.equal(f.alignment, 32);
    assert.equal(f.dataStart % 32, 0);
    assert.deepEqual(f.tensors.get('second')!.ne, [4, 2]);
    assert.equal(f.tensors.get('second')!.offset, f.dataStart + 32);
    assert.throws(() => f.uint('general.architecture'), /"general.architecture" should be an integer, not string/);
    assert.throws(() => f.strings('some.count'), /should be an array of strings, not u32/);
    assert.throws(() => f.string('missing.key'), /GGUF metadata has no "missing.key"/);
  });

  it('refuses a missing file with the file system cause', async () => {
    const path = scratchPath('absent.gguf');
    await assert.rejects(GgufFile.open(path), (e: unknown) => e instanceof CtxError && /no such file/.test(e.message));
  });
  it('refuses a file that does not start with GGUF', async () => rejects(patched(validFile(), (b) => void b.write('GGML', 0)), /does not start with "GGUF"/));
  it('refuses a file shorter than the fixed header', async () => rejects(patched(validFile(), (b) => b.subarray(0, 12)), /only 12 bytes/));
  it('refuses versions other than 2 and 3', async () => rejects(patched(validFile(), (b) => void b.writeUInt32LE(1, 4)), /version 1/));
  it('refuses counts the file cannot hold, before parsing', async () => {
    await rejects(patched(validFile(), (b) => void b.writeBigUInt64LE(1n << 40n, 8)), /1099511627776 tensors .* cannot fit/);
    await rejects(patched(validFile(), (b) => void b.writeBigUInt64LE(50_000n, 16)), /50000 metadata keys cannot fit/);
  });
  it('refuses a file truncated inside the header', async () => {
    const path = validFile();
    const size = readFileSync(path).length;
    for (const keep of [40, 70, 150, 190]) {
      if (keep < size) await rejects(patched(path, (b) => b.subarray(0, keep)), /truncated file|cannot fit|not a valid GGUF/);
    }
  });
  it('refuses a file truncated inside the tensor data', async () => {
    await rejects(patched(validFile(), (b) => b.subarray(0, b.length - 8)), /tensor "second": its 32 bytes at offset 32 run past the end .*truncated/);
  });
  it('refuses a string length of 2^40 without allocating it', async () => {
    // The first key's length prefix sits right after the 24-byte fixed header.
    await rejects(patched(validFile(), (b) => void b.writeBigUInt64LE(1n << 40n, 24)), /not a valid GGUF file: .*String length/);
  });
  it('refuses an array longer than the parser allows', async () => {
    const path = validFile({ 'big.list': gv.i32s(new Int32Array(10)) });
    await rejects(
      patched(path, (b) => {
        const at = b.indexOf(Buffer.from('big.list')) + 8 + 4 + 4; // key, value type, element type
        b.writeBigUInt64LE(2_000_000n, at);
      }),
      /Metadata array length 2000000 exceeds/,
    );
  });
  it('refuses an unknown metadata value type', async () => {
    await rejects(patched(validFile(), (b) => void b.writeUInt32LE(99, b.indexOf(Buffer.from('some.count')) + 10)), /Unsupported metadata type: 99/);
  });
  it('refuses a key given twice', async () => {
    const path = validFile({ 'dup.aaaa': gv.u32(1), 'dup.bbbb': gv.u32(2) });
    await rejects(patched(path, (b) => void b.write('dup.aaaa', b.indexOf(Buffer.from('dup.bbbb')))), /kv_count is 5 but 4 distinct keys/);
  });
  it('refuses an alignment that is not a power of two', async () => {
    await rejects(validFile({ 'general.alignment': gv.u32(48) }), /general.alignment 48 is not a power of two/);
  });
  it('refuses unsupported tensor types by name', async () => {
    const path = validFile();
    const q3k = patched(path, (b) => {
      const at = afterName(b, 'first') + 4 + 8; // n_dims, ne[0]
      b.writeUInt32LE(11, at);
    });
    await rejects(q3k, /tensor "first": type Q3_K is not supported \(ctx reads F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K\)/);
    await rejects(patched(path, (b) => void b.writeUInt32LE(200, afterName(b, 'first') + 12)), /type type 200 is not supported/);
  });
  it('refuses dimension counts outside 1..4, zero dimensions and ne[0] off the block size', async () => {
    // With 0 dimensions the rest of the entry is read as the next fields: refused either way.
    await rejects(patched(validFile(), (b) => void b.writeUInt32LE(0, afterName(b, 'first'))), /not a valid GGUF file/);
    await rejects(patched(validFile(), (b) => void b.writeBigUInt64LE(0n, afterName(b, 'first') + 4)), /tensor "first": bad dimension 0/);
    const q8 = validFile({}, [{ name: 'qtensor', ne: [32], type: 'Q8_0', data: new Uint8Array(34) }]);
    await rejects(patched(q8, (b) => void b.writeBigUInt64LE(16n, afterName(b, 'qtensor') + 4)), /Q8_0 needs ne\[0\] to be a multiple of 32, got 16/);
  });
  it('refuses a shape whose size overflows', async () => {
    await rejects(
      patched(validFile(), (b) => {
        const at = afterName(b, 'second') + 4;
        b.writeBigUInt64LE(1n << 31n, at);
        b.writeBigUInt64LE(1n << 31n, at + 8);
      }),
      /tensor "second": (shape is too large|.*run past the end)/,
    );
  });
  it('refuses misaligned, out-of-file and overlapping tensor offsets', async () => {
    const offsetAt = (b: Buffer, name: string, dims: number) => afterName(b, name) + 4 + 8 * dims + 4;
    await rejects(patched(validFile(), (b) => void b.writeBigUInt64LE(4n, offsetAt(b, 'second', 2))), /offset 4 is not a multiple of the alignment 32/);
    await rejects(patched(validFile(), (b) => void b.writeBigUInt64LE(1n << 50n, offsetAt(b, 'second', 2))), /run past the end/);
    await rejects(patched(validFile(), (b) => void b.writeBigUInt64LE(0n, offsetAt(b, 'second', 2))), /tensors "first" and "second" overlap/);
  });
  it('refuses a tensor listed twice', async () => {
    const path = validFile({}, [
      { name: 'aaa', ne: [8], type: 'F32', data: F32x8 },
      { name: 'bbb', ne: [8], type: 'F32', data: F32x8 },
    ]);
    await rejects(patched(path, (b) => void b.write('aaa', afterName(b, 'bbb') - 3)), /tensor "aaa" is listed twice/);
  });
});

describe('GGUF architecture', () => {
  it('refuses architectures ctx does not run, by name', async () => {
    const f = await GgufFile.open(validFile({ 'general.architecture': gv.str('phi3') }));
    assert.throws(() => ggufModelConfig(f), /GGUF architecture "phi3" is not supported \(ctx runs qwen2, llama\)/);
  });
  it('names a missing hyper-parameter', async () => {
    const f = await GgufFile.open(validFile({}, [{ name: 'token_embd.weight', ne: [8, 4], type: 'F32', data: new Uint8Array(128) }]));
    assert.throws(() => ggufModelConfig(f), /GGUF metadata has no "qwen2.embedding_length"/);
  });
});
