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
// The checksum covers the header too, so a flipped bit anywhere, or a truncated file, is caught
// before anything is used. Sizes in a file are not trusted before they are checked: the header may
// be at most MAX_HEAD_BYTES, and a payload over VERIFY_FIRST_BYTES is checksummed in a first pass that
// allocates nothing, so a forged entry that claims gigabytes costs a read, never the memory. Arrays are written and read in pieces, so an entry larger than a Node
// Buffer (2 GiB) still works and memory stays at one copy of the snapshot. Typed arrays are stored
// in the machine's byte order, which the store checks is little-endian before using the cache.

import { createHash, type Hash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { SequenceSnapshot } from '../backend/contract.js';
import type { SessionSnapshot } from '../engine/session.js';
import type { StrategyState } from '../engine/strategies/strategy.js';

export const MAGIC = Buffer.from('CTXSESS\n', 'latin1');
export const FORMAT_VERSION = 1;
const PREAMBLE = 16;
const DIGEST = 32;
/** Bytes moved per read or write call: big enough to be fast, small enough to check for Ctrl-C often. */
const PIECE = 16 * 1024 * 1024;
/** The preamble and header together; a real header lists a few arrays per layer (kilobytes). */
export const MAX_HEAD_BYTES = 16 * 1024 * 1024;
/** Payloads larger than this are checksummed before their arrays are allocated. */
const VERIFY_FIRST_BYTES = 64 * 1024 * 1024;

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

type ArrayKind = 'f32' | 'i32';

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
  /** Layers, rows stored per layer, and the strategy's own (JSON) state. */
  layers: number;
  rows: number;
  strategyState: StrategyState;
  /** Which layers have a TokenSelect reuse cache. */
  selectCacheLayers: boolean[];
  arrays: ArrayEntry[];
}

/** Everything the snapshot holds except the resolved strategy, which the key already fixes. */
export type StoredSession = Omit<SessionSnapshot, 'resolved'>;

/** The snapshot's arrays in payload order, with their names (for the header and for reading back). */
function arraysOf(s: StoredSession): Array<{ name: string; kind: ArrayKind; data: Float32Array | Int32Array }> {
  const out: Array<{ name: string; kind: ArrayKind; data: Float32Array | Int32Array }> = [];
  s.sequence.keys.forEach((k, l) => out.push({ name: `keys.${l}`, kind: 'f32', data: k }));
  s.sequence.values.forEach((v, l) => out.push({ name: `values.${l}`, kind: 'f32', data: v }));
  out.push({ name: 'tokens', kind: 'i32', data: s.tokens });
  out.push({ name: 'pending', kind: 'i32', data: s.pending });
  s.sequence.selectCache.forEach((c, l) => {
    if (!c) return;
    out.push({ name: `qbar.${l}`, kind: 'f32', data: c.qbar });
    out.push({ name: `top.${l}`, kind: 'i32', data: c.top });
  });
  return out;
}

/** The bytes of a typed array without copying. */
function bytesOf(a: Float32Array | Int32Array): Buffer {
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
export async function writeEntry(fh: FileHandle, key: string, meta: EntryMeta, s: StoredSession, o: WriteEntryOptions = {}): Promise<number> {
  const arrays = arraysOf(s);
  const header: EntryHeader = {
    key,
    createdAt: new Date().toISOString(),
    meta,
    layers: s.sequence.keys.length,
    rows: s.sequence.rows,
    strategyState: s.strategyState,
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
 * Reads a whole entry and verifies its checksum before returning anything. Throws CorruptEntry
 * when the file is damaged, truncated, or not what its header says.
 */
export async function readEntry(fh: FileHandle, fileSize: number, signal?: AbortSignal): Promise<{ header: EntryHeader; session: StoredSession }> {
  const { header, payloadStart } = await readHeader(fh, fileSize);
  const hash = createHash('sha256');
  // The head is hashed as it is on disk (with its padding).
  const head = Buffer.alloc(payloadStart);
  await readExactly(fh, head, 0);
  hash.update(head);

  const payloadBytes = header.arrays.reduce((n, a) => n + 4 * a.length, 0);
  if (payloadStart + payloadBytes + DIGEST !== fileSize) {
    throw new CorruptEntry(`size ${fileSize} bytes does not match its header (${payloadStart + payloadBytes + DIGEST})`);
  }
  if (payloadBytes > VERIFY_FIRST_BYTES) await verifyChecksum(fh, fileSize, signal);
  const arrays = new Map<string, Float32Array | Int32Array>();
  let at = payloadStart;
  for (const a of header.arrays) {
    if (!Number.isInteger(a.length) || a.length < 0) throw new CorruptEntry(`array ${a.name} has a bad length`);
    const data = a.kind === 'f32' ? new Float32Array(a.length) : new Int32Array(a.length);
    await readInto(fh, bytesOf(data), at, hash, signal);
    at += data.byteLength;
    arrays.set(a.name, data);
  }
  const digest = Buffer.alloc(DIGEST);
  await readExactly(fh, digest, at);
  if (!digest.equals(hash.digest())) throw new CorruptEntry('checksum mismatch');
  return { header, session: assemble(header, arrays) };
}

/** Checks the whole file's checksum through one reused buffer (a first pass before big allocations). */
async function verifyChecksum(fh: FileHandle, fileSize: number, signal?: AbortSignal): Promise<void> {
  const hash = createHash('sha256');
  const buf = Buffer.alloc(Math.min(PIECE, fileSize - DIGEST));
  for (let at = 0; at < fileSize - DIGEST; ) {
    signal?.throwIfAborted();
    const piece = buf.subarray(0, Math.min(buf.length, fileSize - DIGEST - at));
    await readExactly(fh, piece, at);
    hash.update(piece);
    at += piece.length;
  }
  const digest = Buffer.alloc(DIGEST);
  await readExactly(fh, digest, fileSize - DIGEST);
  if (!digest.equals(hash.digest())) throw new CorruptEntry('checksum mismatch');
}

function assemble(header: EntryHeader, arrays: Map<string, Float32Array | Int32Array>): StoredSession {
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
  const layers = header.layers;
  if (!Number.isInteger(layers) || header.selectCacheLayers.length !== layers) throw new CorruptEntry('header has a bad layer count');
  const sequence: SequenceSnapshot = {
    rows: header.rows,
    keys: Array.from({ length: layers }, (_, l) => f32(`keys.${l}`)),
    values: Array.from({ length: layers }, (_, l) => f32(`values.${l}`)),
    selectCache: header.selectCacheLayers.map((has, l) => (has ? { qbar: f32(`qbar.${l}`), top: i32(`top.${l}`) } : null)),
  };
  return { strategyState: header.strategyState, tokens: i32('tokens'), pending: i32('pending'), sequence };
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
