// GGUF (version 3) writer: the benchmark's llama.cpp files and the tests' fixtures. Atomic: written
// to a temporary sibling, then renamed, so a failed write leaves nothing behind.
//
// File layout (all little-endian):
//   "GGUF"  u32 version = 3  u64 tensor_count  u64 kv_count
//   kv_count × (string key, u32 value_type, value)            string = u64 byte length + UTF-8
//   tensor_count × (string name, u32 n_dims, n_dims × u64 ne, u32 ggml_type, u64 offset)
//   zero padding to `general.alignment` (32 unless the metadata says otherwise), then the data:
//   each tensor at its offset (relative to the data start, a multiple of the alignment).
// ne[0] is the fastest-varying dimension, so a Hugging Face weight [out, in] is ne = [in, out]
// with the same bytes.

import { writeSync } from 'node:fs';
import { writeFileAtomically } from '../file-io.js';
import { GGML_TYPES, typeBytes, type SupportedType } from './ggml-types.js';

/** GGUF metadata value types (gguf_type). */
export const VALUE_TYPE = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;
export type ScalarType = Exclude<keyof typeof VALUE_TYPE, 'array' | 'string' | 'bool'>;

export type GgufValue =
  | { type: ScalarType; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; of: 'string'; value: string[] }
  | { type: 'array'; of: ScalarType; value: ArrayLike<number> }
  | { type: 'array'; of: 'bool'; value: boolean[] };

/** Shorthands for metadata values. */
export const gv = {
  u32: (value: number): GgufValue => ({ type: 'u32', value }),
  i32: (value: number): GgufValue => ({ type: 'i32', value }),
  f32: (value: number): GgufValue => ({ type: 'f32', value }),
  bool: (value: boolean): GgufValue => ({ type: 'bool', value }),
  str: (value: string): GgufValue => ({ type: 'string', value }),
  strings: (value: string[]): GgufValue => ({ type: 'array', of: 'string', value }),
  i32s: (value: ArrayLike<number>): GgufValue => ({ type: 'array', of: 'i32', value }),
  f32s: (value: ArrayLike<number>): GgufValue => ({ type: 'array', of: 'f32', value }),
};

export interface GgufTensorToWrite {
  name: string;
  /** ggml dimensions, fastest first (a [out, in] matrix is [in, out]). */
  ne: number[];
  type: SupportedType;
  /** The tensor's bytes, whole or as consecutive chunks (so a large tensor need not be in memory at once). */
  data: Uint8Array | (() => Iterable<Uint8Array>);
}

export const DEFAULT_ALIGNMENT = 32;

/** Little-endian byte sink for the header. */
class HeaderBytes {
  private readonly parts: Buffer[] = [];
  length = 0;

  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }

  scalar(type: ScalarType, v: number): void {
    const sizes: Record<ScalarType, number> = { u8: 1, i8: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, u64: 8, i64: 8, f64: 8 };
    const b = Buffer.alloc(sizes[type]);
    switch (type) {
      case 'u8': b.writeUInt8(v); break;
      case 'i8': b.writeInt8(v); break;
      case 'u16': b.writeUInt16LE(v); break;
      case 'i16': b.writeInt16LE(v); break;
      case 'u32': b.writeUInt32LE(v); break;
      case 'i32': b.writeInt32LE(v); break;
      case 'f32': b.writeFloatLE(v); break;
      case 'u64': b.writeBigUInt64LE(BigInt(v)); break;
      case 'i64': b.writeBigInt64LE(BigInt(v)); break;
      case 'f64': b.writeDoubleLE(v); break;
    }
    this.push(b);
  }

  u32(v: number): void {
    this.scalar('u32', v);
  }

  u64(v: number): void {
    this.scalar('u64', v);
  }

  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }

  value(v: GgufValue): void {
    if (v.type !== 'array') {
      this.u32(VALUE_TYPE[v.type]);
      if (v.type === 'string') this.str(v.value);
      else if (v.type === 'bool') this.push(Buffer.of(v.value ? 1 : 0));
      else this.scalar(v.type, v.value);
      return;
    }
    this.u32(VALUE_TYPE.array);
    this.u32(VALUE_TYPE[v.of]);
    this.u64(v.value.length);
    if (v.of === 'string') for (const s of v.value as string[]) this.str(s);
    else if (v.of === 'bool') this.push(Buffer.from((v.value as boolean[]).map((x) => (x ? 1 : 0))));
    else for (let i = 0; i < v.value.length; i++) this.scalar(v.of, (v.value as ArrayLike<number>)[i]);
  }

  buffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function padTo(n: number, alignment: number): number {
  return Math.ceil(n / alignment) * alignment;
}

/**
 * Writes a GGUF file. The alignment is `general.alignment` when the metadata sets it (as a u32),
 * else 32. Throws when a tensor's data does not have the byte length its type and shape imply.
 */
export function writeGguf(path: string, metadata: Record<string, GgufValue>, tensors: GgufTensorToWrite[]): void {
  const alignMeta = metadata['general.alignment'];
  const alignment = alignMeta && alignMeta.type === 'u32' ? alignMeta.value : DEFAULT_ALIGNMENT;
  const head = new HeaderBytes();
  head.push(Buffer.from('GGUF', 'ascii'));
  head.u32(3);
  head.u64(tensors.length);
  head.u64(Object.keys(metadata).length);
  for (const [key, value] of Object.entries(metadata)) {
    head.str(key);
    head.value(value);
  }
  const sizes: number[] = [];
  let offset = 0;
  for (const t of tensors) {
    const values = t.ne.reduce((a, b) => a * b, 1);
    if (t.ne[0] % GGML_TYPES[t.type].blockValues !== 0) {
      throw new Error(`GGUF writer: tensor "${t.name}" has ne[0] = ${t.ne[0]}, not a multiple of ${t.type}'s block of ${GGML_TYPES[t.type].blockValues}`);
    }
    const bytes = typeBytes(t.type, values);
    head.str(t.name);
    head.u32(t.ne.length);
    for (const d of t.ne) head.u64(d);
    head.u32(GGML_TYPES[t.type].id);
    head.u64(offset);
    sizes.push(bytes);
    offset += padTo(bytes, alignment);
  }
  const header = head.buffer();

  writeFileAtomically(path, (out) => {
    writeSync(out, header);
    writeSync(out, Buffer.alloc(padTo(header.length, alignment) - header.length));
    tensors.forEach((t, i) => {
      let written = 0;
      const chunks = typeof t.data === 'function' ? t.data() : [t.data];
      for (const chunk of chunks) {
        writeSync(out, chunk);
        written += chunk.length;
      }
      if (written !== sizes[i]) throw new Error(`GGUF writer: tensor "${t.name}" (${t.type} [${t.ne}]) needs ${sizes[i]} bytes, got ${written}`);
      writeSync(out, Buffer.alloc(padTo(written, alignment) - written));
    });
  });
}
