// safetensors reader: validate the header before trusting it, read tensors lazily.
//
// File layout: [u64 LE header length N][N bytes of JSON header][data section].
// Header: { "__metadata__"?: {...}, name: { dtype, shape, data_offsets: [begin, end] } },
// offsets relative to the data section. A hostile header can claim any sizes, so every entry is
// checked (known dtype, byte length = numel × dtype size, inside the data section, no overlaps)
// before a single tensor byte is read. Tensors are read one at a time with positioned reads; a
// 15 GB shard is never held in one buffer.

import { fstatSync } from 'node:fs';
import { CtxError } from '../errors.js';
import { readExactly, withFileForReading } from './file-io.js';

export type DType = 'F32' | 'F16' | 'BF16' | 'I8' | 'U8' | 'I32' | 'I64' | 'F64' | 'BOOL' | 'I16';

export const DTYPE_BYTES: Record<DType, number> = {
  F64: 8,
  I64: 8,
  F32: 4,
  I32: 4,
  F16: 2,
  BF16: 2,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Header entries above this are refused (the reference implementation uses 100 MB too). */
export const MAX_HEADER_BYTES = 100 * 1024 * 1024;

export interface TensorInfo {
  name: string;
  dtype: DType;
  shape: number[];
  /** The file that holds the tensor. */
  file: string;
  /** Absolute byte offset of the tensor's first byte in `file`. */
  offset: number;
  byteLength: number;
}

export class SafetensorsFile {
  readonly path: string;
  readonly tensors = new Map<string, TensorInfo>();
  readonly metadata: Record<string, string>;
  readonly dataStart: number;
  readonly fileSize: number;

  private constructor(path: string, fileSize: number, dataStart: number, metadata: Record<string, string>) {
    this.path = path;
    this.fileSize = fileSize;
    this.dataStart = dataStart;
    this.metadata = metadata;
  }

  static open(path: string): SafetensorsFile {
    return withFileForReading(path, (fd) => {
      const size = fstatSync(fd).size;
      const bad = (why: string) => new CtxError('model', `not a valid safetensors file: ${why}`, { path });
      if (size < 8) throw bad(`only ${size} bytes`);
      const lenBuf = Buffer.alloc(8);
      readExactly(fd, lenBuf, 0, path);
      const headerLen = lenBuf.readBigUInt64LE(0);
      if (headerLen < 2n) throw bad('header length is smaller than "{}"');
      if (headerLen > BigInt(MAX_HEADER_BYTES)) throw bad(`header length ${headerLen} exceeds ${MAX_HEADER_BYTES} bytes`);
      if (headerLen > BigInt(size - 8)) throw bad(`header length ${headerLen} runs past the end of the ${size}-byte file`);
      const hbuf = Buffer.alloc(Number(headerLen));
      readExactly(fd, hbuf, 8, path);
      let header: unknown;
      try {
        header = JSON.parse(hbuf.toString('utf8'));
      } catch (e) {
        throw bad(`header is not JSON (${(e as Error).message})`);
      }
      if (!header || typeof header !== 'object' || Array.isArray(header)) throw bad('header is not a JSON object');
      const dataStart = 8 + Number(headerLen);
      const dataSize = size - dataStart;
      const h = header as Record<string, unknown>;
      const meta = (h.__metadata__ ?? {}) as Record<string, string>;
      const file = new SafetensorsFile(path, size, dataStart, meta);
      const spans: Array<[number, number, string]> = [];
      for (const [name, entry] of Object.entries(h)) {
        if (name === '__metadata__') continue;
        const info = validateEntry(name, entry, dataSize, (why) => bad(`tensor "${name}": ${why}`));
        spans.push([info.begin, info.end, name]);
        file.tensors.set(name, {
          name,
          dtype: info.dtype,
          shape: info.shape,
          file: path,
          offset: dataStart + info.begin,
          byteLength: info.end - info.begin,
        });
      }
      spans.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      for (let i = 1; i < spans.length; i++) {
        if (spans[i][0] < spans[i - 1][1]) throw bad(`tensors "${spans[i - 1][2]}" and "${spans[i][2]}" overlap`);
      }
      return file;
    });
  }

  /** Reads the raw bytes of one tensor. */
  readBytes(name: string): Buffer {
    const t = this.tensors.get(name);
    if (!t) throw new CtxError('model', `no tensor "${name}"`, { path: this.path });
    return readTensorBytes(t);
  }
}

function validateEntry(
  name: string,
  entry: unknown,
  dataSize: number,
  bad: (why: string) => CtxError,
): { dtype: DType; shape: number[]; begin: number; end: number } {
  if (!entry || typeof entry !== 'object') throw bad('entry is not an object');
  const e = entry as Record<string, unknown>;
  const dtype = e.dtype as DType;
  if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) throw bad(`unknown dtype ${JSON.stringify(e.dtype)}`);
  if (!Array.isArray(e.shape)) throw bad('shape is not a list');
  let numel = 1;
  for (const d of e.shape) {
    if (!Number.isSafeInteger(d) || (d as number) < 0) throw bad(`bad dimension ${JSON.stringify(d)}`);
    numel *= d as number;
    if (!Number.isSafeInteger(numel)) throw bad('shape is too large');
  }
  const offs = e.data_offsets;
  if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
    throw bad('data_offsets must be two non-negative integers');
  }
  const [begin, end] = offs as [number, number];
  if (end < begin) throw bad(`data_offsets [${begin}, ${end}] are reversed`);
  if (end > dataSize) throw bad(`data_offsets end ${end} is outside the ${dataSize}-byte data section (truncated file?)`);
  const expected = numel * DTYPE_BYTES[dtype];
  if (end - begin !== expected) {
    throw bad(`holds ${end - begin} bytes but ${dtype} ${JSON.stringify(e.shape)} needs ${expected}`);
  }
  return { dtype, shape: e.shape as number[], begin, end };
}

/** Bytes [start, start + length) of a tensor's data, read from its file. */
export function readTensorRange(t: TensorInfo, start: number, length: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  withFileForReading(t.file, (fd) => readExactly(fd, buf, t.offset + start, t.file, ` reading "${t.name}"`));
  return buf;
}

export function readTensorBytes(t: TensorInfo): Buffer {
  return readTensorRange(t, 0, t.byteLength);
}

/** float16 bits → float32 value. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

/** Converts a tensor's bytes (F32, F16, BF16) to a fresh Float32Array. */
export function toFloat32(t: TensorInfo, bytes: Buffer): Float32Array {
  const n = t.byteLength / DTYPE_BYTES[t.dtype];
  const out = new Float32Array(n);
  switch (t.dtype) {
    case 'F32':
      // Copy into an aligned buffer (bytes may not be 4-byte aligned).
      new Uint8Array(out.buffer).set(bytes);
      return out;
    case 'BF16': {
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u32[i] = bytes.readUInt16LE(2 * i) << 16;
      return out;
    }
    case 'F16':
      for (let i = 0; i < n; i++) out[i] = halfToFloat(bytes.readUInt16LE(2 * i));
      return out;
    default:
      throw new CtxError('model', `tensor "${t.name}" has dtype ${t.dtype}; ctx reads F32, F16 and BF16 weights`, { path: t.file });
  }
}
