// GGUF reader: the header and metadata are parsed by @huggingface/gguf (the ecosystem's parser);
// everything it returns is validated here before ctx trusts it, as the safetensors reader does.
//
// What the library does not check, and this file does:
//  - a truncated file: the library reads past the end as zeros, so the header's end is compared
//    with the file size (and the counts are bounded by the file size before the library runs, so a
//    hostile count cannot make it loop over a 50 MB buffer of zeros first);
//  - a key given twice (the library keeps the last): the number of distinct keys must equal kv_count;
//  - tensors: a type ctx reads, 1–4 dimensions, ne[0] a multiple of the type's block, a byte size
//    that fits in a safe integer, an offset that is a multiple of the alignment, data inside the
//    file, no two tensors overlapping, no name twice.
// The library's own limits (a 50 MB header, 10^6 array elements, 10^7 string bytes, 10^7 tensors)
// bound what a hostile header can make it allocate. Its errors become one CtxError naming the file.

import { fstatSync, readSync } from 'node:fs';
import { gguf } from '@huggingface/gguf';
import { CtxError, fsError } from '../../errors.js';
import { readExactly, withFileForReading } from '../file-io.js';
import { GGML_TYPES, SUPPORTED_TYPE_NAMES, supportedType, typeName, type SupportedType } from './ggml-types.js';

/** GGUF metadata value types (gguf_type), for messages. */
const VALUE_TYPE_NAMES = ['u8', 'i8', 'u16', 'i16', 'u32', 'i32', 'f32', 'bool', 'string', 'array', 'u64', 'i64', 'f64'];
const INTEGER_TYPES = new Set([0, 1, 2, 3, 4, 5, 10, 11]);
const FLOAT_TYPES = new Set([6, 12]);

export type MetaValue = string | number | bigint | boolean | MetaValue[];

export interface MetaEntry {
  value: MetaValue;
  /** gguf_type of the value; for arrays, `subType` is the element type. */
  type: number;
  subType?: number;
}

export interface GgufTensor {
  /** The name in the file (llama.cpp's naming: "blk.0.attn_q.weight"). */
  name: string;
  type: SupportedType;
  /** ggml dimensions, fastest first: a [out, in] matrix has ne = [in, out]. */
  ne: number[];
  /** Absolute byte offset of the first byte in the file. */
  offset: number;
  byteLength: number;
}

/** Smallest encodings: a key-value pair (empty key, u8 value) and a tensor info (empty name, 0 dims). */
const MIN_KV_BYTES = 8 + 4 + 1;
const MIN_TENSOR_INFO_BYTES = 8 + 4 + 4 + 8;
const MAX_DIMS = 4;

export class GgufFile {
  readonly metadata = new Map<string, MetaEntry>();
  /** Tensors by name, in file order. */
  readonly tensors = new Map<string, GgufTensor>();

  private constructor(
    readonly path: string,
    readonly fileSize: number,
    readonly version: number,
    readonly alignment: number,
    /** Absolute offset of the tensor data section. */
    readonly dataStart: number,
  ) {}

  static async open(path: string): Promise<GgufFile> {
    const bad = (why: string) => new CtxError('model', `not a valid GGUF file: ${why}`, { path });
    const fileSize = precheck(path, bad);

    let parsed: Awaited<ReturnType<typeof gguf>> & { typedMetadata: Record<string, { value: unknown; type: number; subType?: number }> };
    try {
      parsed = (await gguf(path, { allowLocalFile: true, typedMetadata: true })) as typeof parsed;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code) throw fsError(e, path, 'model');
      throw bad((e as Error).message);
    }
    const [, headerEnd] = parsed.tensorInfoByteRange;
    if (headerEnd > fileSize) throw bad(`the header runs to byte ${headerEnd} but the file has ${fileSize} (truncated file?)`);

    const meta = parsed.metadata as unknown as Record<string, unknown>;
    const kvCount = Number(meta.kv_count);
    const version = Number(meta.version);
    const entries = Object.entries(parsed.typedMetadata).filter(([k]) => !['version', 'tensor_count', 'kv_count'].includes(k));
    if (entries.length !== kvCount) throw bad(`kv_count is ${kvCount} but ${entries.length} distinct keys were read (a key given twice?)`);

    const alignmentEntry = parsed.typedMetadata['general.alignment'];
    if (alignmentEntry && !INTEGER_TYPES.has(alignmentEntry.type)) throw bad('general.alignment is not an integer');
    const alignment = Number(alignmentEntry?.value ?? 32);
    if (!Number.isSafeInteger(alignment) || alignment <= 0 || alignment > 1 << 20 || (alignment & (alignment - 1)) !== 0) {
      throw bad(`general.alignment ${alignment} is not a power of two up to 1 MiB`);
    }
    const dataStart = Number(parsed.tensorDataOffset);
    const file = new GgufFile(path, fileSize, version, alignment, dataStart);
    for (const [key, e] of entries) {
      file.metadata.set(key, { value: e.value as MetaValue, type: e.type, subType: e.subType });
    }

    const spans: Array<[number, number, string]> = [];
    for (const info of parsed.tensorInfos) {
      const t = validateTensor(info, file, (why) => bad(`tensor "${info.name}": ${why}`));
      if (file.tensors.has(t.name)) throw bad(`tensor "${t.name}" is listed twice`);
      file.tensors.set(t.name, t);
      spans.push([t.offset, t.offset + t.byteLength, t.name]);
    }
    spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    for (let i = 1; i < spans.length; i++) {
      if (spans[i][0] < spans[i - 1][1]) throw bad(`tensors "${spans[i - 1][2]}" and "${spans[i][2]}" overlap`);
    }
    return file;
  }

  has(key: string): boolean {
    return this.metadata.has(key);
  }

  private entry(key: string): MetaEntry {
    const e = this.metadata.get(key);
    if (!e) throw new CtxError('model', `GGUF metadata has no "${key}"`, { path: this.path });
    return e;
  }

  private wrongType(key: string, want: string, e: MetaEntry): CtxError {
    const got = e.type === 9 ? `array of ${VALUE_TYPE_NAMES[e.subType ?? -1] ?? '?'}` : (VALUE_TYPE_NAMES[e.type] ?? `type ${e.type}`);
    return new CtxError('model', `GGUF metadata "${key}" should be ${want}, not ${got}`, { path: this.path });
  }

  string(key: string): string {
    const e = this.entry(key);
    if (e.type !== 8) throw this.wrongType(key, 'a string', e);
    return e.value as string;
  }

  /** A non-negative integer that fits in a safe integer. */
  uint(key: string): number {
    const e = this.entry(key);
    if (!INTEGER_TYPES.has(e.type)) throw this.wrongType(key, 'an integer', e);
    const v = Number(e.value);
    if (!Number.isSafeInteger(v) || v < 0) throw new CtxError('model', `GGUF metadata "${key}" = ${String(e.value)} is out of range`, { path: this.path });
    return v;
  }

  /** A finite number (integer or float types). */
  number(key: string): number {
    const e = this.entry(key);
    if (!INTEGER_TYPES.has(e.type) && !FLOAT_TYPES.has(e.type)) throw this.wrongType(key, 'a number', e);
    const v = Number(e.value);
    if (!Number.isFinite(v)) throw new CtxError('model', `GGUF metadata "${key}" is not finite`, { path: this.path });
    return v;
  }

  bool(key: string): boolean {
    const e = this.entry(key);
    if (e.type !== 7) throw this.wrongType(key, 'a bool', e);
    return e.value as boolean;
  }

  strings(key: string): string[] {
    const e = this.entry(key);
    if (e.type !== 9 || e.subType !== 8) throw this.wrongType(key, 'an array of strings', e);
    return e.value as string[];
  }

  /** An array of numbers (any integer or float element type), as JS numbers. */
  numbers(key: string): number[] {
    const e = this.entry(key);
    if (e.type !== 9 || e.subType === undefined || !(INTEGER_TYPES.has(e.subType) || FLOAT_TYPES.has(e.subType))) throw this.wrongType(key, 'an array of numbers', e);
    return (e.value as Array<number | bigint>).map(Number);
  }

  /** Bytes [start, start + length) of a tensor's data. */
  readRange(t: GgufTensor, start: number, length: number): Buffer {
    if (start < 0 || length < 0 || start + length > t.byteLength) {
      throw new Error(`GGUF read of [${start}, ${start + length}) is outside tensor "${t.name}" (${t.byteLength} bytes)`);
    }
    const buf = Buffer.allocUnsafe(length);
    withFileForReading(this.path, (fd) => readExactly(fd, buf, t.offset + start, this.path, ` reading "${t.name}"`));
    return buf;
  }
}

/**
 * Reads the fixed 24-byte start (magic, version, tensor_count, kv_count) and refuses counts the file
 * is too small to hold. Returns the file size.
 */
function precheck(path: string, bad: (why: string) => CtxError): number {
  return withFileForReading(path, (fd) => {
    const size = fstatSync(fd).size;
    const head = Buffer.alloc(24);
    const n = readSync(fd, head, 0, 24, 0);
    if (n < 4 || head.toString('latin1', 0, 4) !== 'GGUF') throw bad('it does not start with "GGUF"');
    if (n < 24) throw bad(`only ${size} bytes`);
    const version = head.readUInt32LE(4);
    if (version !== 2 && version !== 3) throw bad(`version ${version} (ctx reads GGUF versions 2 and 3)`);
    const tensorCount = head.readBigUInt64LE(8);
    const kvCount = head.readBigUInt64LE(16);
    const need = 24n + tensorCount * BigInt(MIN_TENSOR_INFO_BYTES) + kvCount * BigInt(MIN_KV_BYTES);
    if (need > BigInt(size)) throw bad(`${tensorCount} tensors and ${kvCount} metadata keys cannot fit in ${size} bytes (truncated file?)`);
    return size;
  });
}

function validateTensor(
  info: { name: string; n_dims: number; shape: bigint[]; dtype: number; offset: bigint },
  file: GgufFile,
  bad: (why: string) => CtxError,
): GgufTensor {
  const type = supportedType(info.dtype);
  if (!type) throw bad(`type ${typeName(info.dtype)} is not supported (ctx reads ${SUPPORTED_TYPE_NAMES.join(', ')})`);
  if (info.n_dims < 1 || info.n_dims > MAX_DIMS) throw bad(`${info.n_dims} dimensions (1 to ${MAX_DIMS} expected)`);
  const ne = info.shape.map(Number);
  let values = 1;
  for (const d of ne) {
    if (!Number.isSafeInteger(d) || d < 1) throw bad(`bad dimension ${d}`);
    values *= d;
    if (!Number.isSafeInteger(values)) throw bad('shape is too large');
  }
  const layout = GGML_TYPES[type];
  if (ne[0] % layout.blockValues !== 0) throw bad(`${type} needs ne[0] to be a multiple of ${layout.blockValues}, got ${ne[0]}`);
  const byteLength = (values / layout.blockValues) * layout.blockBytes;
  const rel = info.offset;
  if (rel % BigInt(file.alignment) !== 0n) throw bad(`offset ${rel} is not a multiple of the alignment ${file.alignment}`);
  const end = BigInt(file.dataStart) + rel + BigInt(byteLength);
  if (end > BigInt(file.fileSize)) throw bad(`its ${byteLength} bytes at offset ${rel} run past the end of the ${file.fileSize}-byte file (truncated file?)`);
  return { name: info.name, type, ne, offset: file.dataStart + Number(rel), byteLength };
}
