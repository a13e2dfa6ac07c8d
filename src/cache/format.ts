// The file format of one cache entry: a session snapshot (SessionSnapshot, engine/session.ts) in
// one binary file that says what it is, what it holds, and whether it arrived intact.
//
//   offset 0   "CTXSESS\n"                 8 bytes, magic
//          8   format version              u32 little-endian
//         12   header length H             u32 little-endian
//         16   header                      H bytes of JSON, padded with spaces to a multiple of 8
//   16 + H     payload                     the typed arrays, little-endian, in the order of `arrays`
//     end-32   sha256 of everything above  32 bytes
//
// The KV rows are stored as the sequence holds them: per layer and KV head (keys.<l>.<h>,
// values.<l>.<h>, [rows, D] each) in the KV dtype (f16 halves or f32). The checksum covers the
// header too, so a flipped bit anywhere, or a truncated file, is caught before anything is used.
// Arrays are written straight from the snapshot's own arrays (no copy; a snapshot may share them
// with the live sequence, contract.ts) and read in pieces, so an entry larger than a Node Buffer
// (2 GiB) still works and memory holds one copy of the session.
//
// Reading is one pass: each piece is read straight into its array and hashed there, and the
// arrays are returned only once the digest matches (a damaged entry's arrays are dropped unused).
// The header's lengths must add up to the file's size, which the store bounds by its size cap, so
// a damaged header cannot make a read allocate more than the file holds. A layer's KV arrays are
// views of one buffer, as a sequence keeps them (backend/cpu/kv-store.ts), with room for
// KV_ROOM_ROWS more rows each (address space, committed only when written): the sequence restored
// from them appends the question and answer in place. One allocation per layer, not per head
// with room to double, keeps V8 from collecting garbage again and again over memory it counts
// as external. Typed arrays are stored in the machine's byte order, which the store checks is
// little-endian before using the cache.

import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { KvDtype, KvRows, SequenceSnapshot } from '../backend/contract.js';
import type { SessionSnapshot } from '../engine/session.js';
import type { StrategyState } from '../engine/strategies/strategy.js';

export const MAGIC = Buffer.from('CTXSESS\n', 'latin1');
/** 3: the tokens read are counted, not stored (the key holds their digest; a long document's ids are never all held). */
export const FORMAT_VERSION = 3;
const PREAMBLE = 16;
const DIGEST = 32;
/** Bytes moved per read or write call: big enough to be fast, small enough to check for Ctrl-C often. */
const PIECE = 16 * 1024 * 1024;
/** The preamble and header together; a real header lists a few arrays per layer (kilobytes). */
export const MAX_HEAD_BYTES = 16 * 1024 * 1024;

/** What `ctx cache ls` shows about an entry; written by the run that read the document. */
export interface EntryMeta {
  /** The inputs as the user named them ("-" for stdin). */
  inputs: string[];
  /** The model as named on the command line, and its folder. */
  model: string;
  modelDir: string;
  /** The strategy's description ("beacon v3 (ratio 8, window 32)"). */
  strategy: string;
  backend: string;
  numeric: string;
  /** The document's tokens (as the plan and progress count them; the system prefix before it is not counted). */
  tokens: number;
}

type ArrayKind = 'f32' | 'f16' | 'i32';
type TypedRows = Float32Array | Uint16Array | Int32Array;

const ELEMENT_BYTES: Record<ArrayKind, number> = { f32: 4, f16: 2, i32: 4 };

/** One typed array of the payload: where it goes in the snapshot, its element type and length. */
interface ArrayEntry {
  name: string;
  kind: ArrayKind;
  length: number;
}

export interface EntryHeader {
  key: string;
  createdAt: string;
  meta: EntryMeta;
  /** Layers, KV heads per layer, head size, rows stored per layer, their dtype, and the strategy's own (JSON) state. */
  layers: number;
  kvHeads: number;
  headDim: number;
  rows: number;
  kvDtype: KvDtype;
  strategyState: StrategyState;
  /** Tokens the session has fed (the prompt read; the key says which they are). */
  fedTokens: number;
  /** Which layers have a TokenSelect reuse cache. */
  selectCacheLayers: boolean[];
  arrays: ArrayEntry[];
}

/** Everything the snapshot holds except the resolved strategy, which the key already fixes. */
export type StoredSession = Omit<SessionSnapshot, 'resolved'>;

/** The snapshot's arrays in payload order, with their names (for the header and for reading back). */
function arraysOf(s: StoredSession, D: number): Array<{ name: string; kind: ArrayKind; data: TypedRows }> {
  const seq = s.sequence;
  const out: Array<{ name: string; kind: ArrayKind; data: TypedRows }> = [];
  const n = seq.rows * D;
  seq.keys.forEach((heads, l) => heads.forEach((a, h) => out.push({ name: `keys.${l}.${h}`, kind: seq.kvDtype, data: a.subarray(0, n) })));
  seq.values.forEach((heads, l) => heads.forEach((a, h) => out.push({ name: `values.${l}.${h}`, kind: seq.kvDtype, data: a.subarray(0, n) })));
  out.push({ name: 'pending', kind: 'i32', data: s.pending });
  seq.selectCache.forEach((c, l) => {
    if (!c) return;
    out.push({ name: `qbar.${l}`, kind: 'f32', data: c.qbar });
    out.push({ name: `top.${l}`, kind: 'i32', data: c.top });
  });
  return out;
}

/** Bytes of an entry's payload (the size-cap check, before anything is written): D is the head size. */
export function payloadBytes(s: StoredSession, D: number): number {
  return arraysOf(s, D).reduce((n, a) => n + a.data.byteLength, 0);
}

/** The bytes of a typed array without copying. */
function bytesOf(a: TypedRows): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** The preamble and padded header: everything before the payload. */
function encodeHead(header: EntryHeader): Buffer {
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const pad = (8 - ((PREAMBLE + json.length) % 8)) % 8;
  if (pad) json = Buffer.concat([json, Buffer.alloc(pad, 0x20)]);
  const pre = Buffer.alloc(PREAMBLE);
  MAGIC.copy(pre, 0);
  pre.writeUInt32LE(FORMAT_VERSION, 8);
  pre.writeUInt32LE(json.length, 12);
  return Buffer.concat([pre, json]);
}

export interface WriteEntryOptions {
  signal?: AbortSignal;
  /**
   * Test hook: throw an error with this errno code (e.g. "ENOSPC") after writing the head, as a
   * full disk would halfway through an entry. Set from CTX_TEST_CACHE_WRITE_ERROR.
   */
  failWith?: string;
}

/** Writes an entry to an open file; returns the bytes written. The caller makes it atomic. */
export async function writeEntry(fh: FileHandle, key: string, meta: EntryMeta, s: StoredSession, D: number, o: WriteEntryOptions = {}): Promise<number> {
  const arrays = arraysOf(s, D);
  const header: EntryHeader = {
    key,
    createdAt: new Date().toISOString(),
    meta,
    layers: s.sequence.keys.length,
    kvHeads: s.sequence.keys[0]?.length ?? 0,
    headDim: D,
    rows: s.sequence.rows,
    kvDtype: s.sequence.kvDtype,
    strategyState: s.strategyState,
    fedTokens: s.fedTokens,
    selectCacheLayers: s.sequence.selectCache.map((c) => c !== null),
    arrays: arrays.map((a) => ({ name: a.name, kind: a.kind, length: a.data.length })),
  };
  const hash = createHash('sha256');
  let written = 0;
  const put = async (b: Buffer) => {
    for (let at = 0; at < b.length; at += PIECE) {
      o.signal?.throwIfAborted();
      const piece = b.subarray(at, Math.min(b.length, at + PIECE));
      hash.update(piece);
      await writeAll(fh, piece);
      written += piece.length;
    }
  };
  await put(encodeHead(header));
  if (o.failWith) throw Object.assign(new Error(`${o.failWith}: injected write failure`), { code: o.failWith });
  for (const a of arrays) await put(bytesOf(a.data));
  const digest = hash.digest();
  await writeAll(fh, digest);
  return written + digest.length;
}

async function writeAll(fh: FileHandle, b: Buffer): Promise<void> {
  for (let at = 0; at < b.length; ) {
    const { bytesWritten } = await fh.write(b, at, b.length - at);
    at += bytesWritten;
  }
}

/** Why an entry cannot be used; the cache discards the file and says so. */
export class CorruptEntry extends Error {}

/** Reads and checks the preamble and header (what `ctx cache ls` needs); no checksum yet. */
export async function readHeader(fh: FileHandle, fileSize: number): Promise<{ header: EntryHeader; payloadStart: number }> {
  if (fileSize < PREAMBLE + DIGEST) throw new CorruptEntry(`too short (${fileSize} bytes)`);
  const pre = Buffer.alloc(PREAMBLE);
  await readExactly(fh, pre, 0);
  if (!pre.subarray(0, 8).equals(MAGIC)) throw new CorruptEntry('not a ctx session file');
  const version = pre.readUInt32LE(8);
  if (version !== FORMAT_VERSION) throw new CorruptEntry(`format version ${version}, this ctx reads ${FORMAT_VERSION}`);
  const length = pre.readUInt32LE(12);
  if (PREAMBLE + length + DIGEST > fileSize) throw new CorruptEntry('header runs past the end of the file');
  if (PREAMBLE + length > MAX_HEAD_BYTES) throw new CorruptEntry(`header of ${length} bytes is larger than any ctx writes`);
  const json = Buffer.alloc(length);
  await readExactly(fh, json, PREAMBLE);
  let header: EntryHeader;
  try {
    header = JSON.parse(json.toString('utf8')) as EntryHeader;
  } catch {
    throw new CorruptEntry('header is not valid JSON');
  }
  if (typeof header.key !== 'string' || !Array.isArray(header.arrays) || !header.meta) throw new CorruptEntry('header lacks its fields');
  return { header, payloadStart: PREAMBLE + length };
}

/**
 * Reads a whole entry, verifying its checksum as it reads, and returns it only when the checksum
 * matches. Throws CorruptEntry when the file is damaged, truncated, or not what its header says.
 */
export async function readEntry(fh: FileHandle, fileSize: number, signal?: AbortSignal): Promise<{ header: EntryHeader; session: StoredSession }> {
  const { header, payloadStart } = await readHeader(fh, fileSize);
  const hash = createHash('sha256');
  // The head is hashed as it is on disk (with its padding).
  const head = Buffer.alloc(payloadStart);
  await readExactly(fh, head, 0);
  hash.update(head);

  for (const a of header.arrays) {
    if (!Number.isInteger(a.length) || a.length < 0) throw new CorruptEntry(`array ${a.name} has a bad length`);
    if (!Object.hasOwn(ELEMENT_BYTES, a.kind)) throw new CorruptEntry(`array ${a.name} has an unknown kind`);
  }
  const payload = header.arrays.reduce((n, a) => n + ELEMENT_BYTES[a.kind] * a.length, 0);
  if (payloadStart + payload + DIGEST !== fileSize) {
    throw new CorruptEntry(`size ${fileSize} bytes does not match its header (${payloadStart + payload + DIGEST})`);
  }
  checkShape(header);
  const kv = new KvBuffers(header);
  const arrays = new Map<string, TypedRows>();
  let at = payloadStart;
  for (const a of header.arrays) {
    const data = kv.view(a) ?? (a.kind === 'i32' ? new Int32Array(a.length) : a.kind === 'f16' ? new Uint16Array(a.length) : new Float32Array(a.length));
    const bytes = ELEMENT_BYTES[a.kind] * a.length;
    await readInto(fh, Buffer.from(data.buffer, data.byteOffset, bytes), at, hash, signal);
    at += bytes;
    arrays.set(a.name, data);
  }
  const digest = Buffer.alloc(DIGEST);
  await readExactly(fh, digest, at);
  if (!digest.equals(hash.digest())) throw new CorruptEntry('checksum mismatch');
  return { header, session: assemble(header, arrays) };
}

/** Rows of room a restored KV array gets beyond its stored rows (reserved address space, not memory). */
export const KV_ROOM_ROWS = 1 << 16;

/** The header's KV shape, checked before anything is allocated from it. */
function checkShape(header: EntryHeader): void {
  const { layers, kvHeads, headDim, rows } = header;
  if (!(Number.isInteger(layers) && layers >= 0 && Array.isArray(header.selectCacheLayers) && header.selectCacheLayers.length === layers)) throw new CorruptEntry('header has a bad layer count');
  if (!(Number.isInteger(kvHeads) && kvHeads >= 1 && Number.isInteger(headDim) && headDim >= 1 && Number.isInteger(rows) && rows >= 0)) throw new CorruptEntry('header has a bad KV shape');
  if (header.kvDtype !== 'f32' && header.kvDtype !== 'f16') throw new CorruptEntry(`header names an unknown KV dtype ${JSON.stringify(header.kvDtype)}`);
  for (const a of header.arrays) {
    const m = /^(?:keys|values)\.(\d+)\.(\d+)$|^pending$|^(?:qbar|top)\.(\d+)$/.exec(a.name);
    const known = m && (m[3] === undefined || header.selectCacheLayers[Number(m[3])] === true);
    if (!known) throw new CorruptEntry(`array ${a.name} is not part of a session`);
  }
}

/**
 * The KV arrays of a restored entry: per layer one buffer, allocated when its first array is read,
 * holding keys.<l>.<h> then values.<l>.<h>, each [rows + KV_ROOM_ROWS, D] in the KV dtype.
 */
class KvBuffers {
  private readonly layers = new Map<number, ArrayBuffer>();
  private readonly capacity: number;

  constructor(private readonly header: EntryHeader) {
    this.capacity = (header.rows + KV_ROOM_ROWS) * header.headDim;
  }

  /** The view array `a` is read into, or null when it is not a KV array. */
  view(a: ArrayEntry): TypedRows | null {
    const m = /^(keys|values)\.(\d+)\.(\d+)$/.exec(a.name);
    if (!m) return null;
    const { layers, kvHeads, kvDtype, rows, headDim } = this.header;
    const l = Number(m[2]);
    const h = Number(m[3]);
    if (!(l < layers && h < kvHeads) || a.kind !== kvDtype || a.length !== rows * headDim) throw new CorruptEntry(`array ${a.name} does not fit the header's KV shape`);
    const bytes = ELEMENT_BYTES[kvDtype];
    let buffer = this.layers.get(l);
    if (!buffer) {
      try {
        buffer = new ArrayBuffer(2 * kvHeads * this.capacity * bytes);
      } catch (e) {
        // Only a damaged header asks for more than the machine gives: a real entry's rows fit in memory.
        if (e instanceof RangeError) throw new CorruptEntry(`its KV shape (${kvHeads} heads × ${headDim} values × ${rows} rows and room) cannot be allocated`);
        throw e;
      }
      this.layers.set(l, buffer);
    }
    const offset = ((m[1] === 'keys' ? 0 : kvHeads) + h) * this.capacity * bytes;
    return kvDtype === 'f16' ? new Uint16Array(buffer, offset, this.capacity) : new Float32Array(buffer, offset, this.capacity);
  }
}

function assemble(header: EntryHeader, arrays: Map<string, TypedRows>): StoredSession {
  const f32 = (name: string): Float32Array => {
    const a = arrays.get(name);
    if (!(a instanceof Float32Array)) throw new CorruptEntry(`array ${name} is missing`);
    return a;
  };
  const i32 = (name: string): Int32Array => {
    const a = arrays.get(name);
    if (!(a instanceof Int32Array)) throw new CorruptEntry(`array ${name} is missing`);
    return a;
  };
  const { layers, kvHeads, headDim, rows } = header;
  const kv = (name: string): KvRows => {
    const a = arrays.get(name);
    const entry = header.arrays.find((e) => e.name === name);
    if (!(header.kvDtype === 'f16' ? a instanceof Uint16Array : a instanceof Float32Array) || entry?.length !== rows * headDim) throw new CorruptEntry(`array ${name} is missing`);
    return a as KvRows;
  };
  const heads = (which: string, l: number) => Array.from({ length: kvHeads }, (_, h) => kv(`${which}.${l}.${h}`));
  const sequence: SequenceSnapshot = {
    rows,
    kvDtype: header.kvDtype,
    keys: Array.from({ length: layers }, (_, l) => heads('keys', l)),
    values: Array.from({ length: layers }, (_, l) => heads('values', l)),
    selectCache: header.selectCacheLayers.map((has, l) => (has ? { qbar: f32(`qbar.${l}`), top: i32(`top.${l}`) } : null)),
  };
  if (!Number.isSafeInteger(header.fedTokens) || header.fedTokens < 0) throw new CorruptEntry('header has a bad token count');
  return { strategyState: header.strategyState, fedTokens: header.fedTokens, pending: i32('pending'), sequence };
}

async function readExactly(fh: FileHandle, into: Buffer, position: number): Promise<void> {
  for (let at = 0; at < into.length; ) {
    const { bytesRead } = await fh.read(into, at, into.length - at, position + at);
    if (bytesRead === 0) throw new CorruptEntry('file ends early');
    at += bytesRead;
  }
}

async function readInto(fh: FileHandle, into: Buffer, position: number, hash: Hash, signal?: AbortSignal): Promise<void> {
  for (let at = 0; at < into.length; at += PIECE) {
    signal?.throwIfAborted();
    const piece = into.subarray(at, Math.min(into.length, at + PIECE));
    await readExactly(fh, piece, position + at);
    hash.update(piece);
  }
}
