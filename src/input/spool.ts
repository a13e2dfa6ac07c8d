// The bytes of an input that cannot be read twice (stdin, a named pipe, a device), kept as they
// are first read so that a long document can be read again (once to count its tokens, once into the
// model) without holding it. They stay in memory up to MEMORY_BYTES, then move to a file in a
// folder of ctx's own; the file is removed from its folder as soon as it is open, so nothing is
// left behind however the run ends (even kill -9), and no other process can open it.

import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { CtxError, fsError } from '../errors.js';

/** Bytes kept in memory before they move to the spool file. */
export const SPOOL_MEMORY_BYTES = 16 * 1024 * 1024;
const PIECE = 1024 * 1024;

export class Spool {
  private chunks: Buffer[] = [];
  private memory = 0;
  private file: FileHandle | null = null;
  private path = '';
  /** Bytes written so far. */
  bytes = 0;

  /** `dir` is called when the bytes outgrow memory: a private folder the file may go in. */
  constructor(
    private readonly dir: () => string,
    private readonly memoryBytes = SPOOL_MEMORY_BYTES,
  ) {}

  async write(chunk: Buffer): Promise<void> {
    this.bytes += chunk.length;
    if (this.file === null && this.memory + chunk.length <= this.memoryBytes) {
      this.chunks.push(chunk);
      this.memory += chunk.length;
      return;
    }
    if (this.file === null) await this.moveToFile();
    await this.writeAll(chunk);
  }

  /** The bytes written, from the first, in pieces. */
  async *read(signal?: AbortSignal): AsyncGenerator<Buffer> {
    if (this.file === null) {
      for (const c of this.chunks) {
        signal?.throwIfAborted();
        yield c;
      }
      return;
    }
    for (let at = 0; at < this.bytes; ) {
      signal?.throwIfAborted();
      const piece = Buffer.alloc(Math.min(PIECE, this.bytes - at));
      const { bytesRead } = await this.file.read(piece, 0, piece.length, at);
      if (bytesRead === 0) throw new CtxError('io', `the spool file of an input ended early (${at} of ${this.bytes} bytes)`, { path: this.path });
      at += bytesRead;
      yield piece.subarray(0, bytesRead);
    }
  }

  /** Frees the bytes (memory, and the file's space). */
  async close(): Promise<void> {
    this.chunks = [];
    this.memory = 0;
    const file = this.file;
    this.file = null;
    await file?.close().catch(() => {});
  }

  private async moveToFile(): Promise<void> {
    const dir = this.dir();
    this.path = join(dir, `.tmp-spool-${process.pid}-${randomBytes(4).toString('hex')}`);
    try {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      this.file = await open(this.path, 'wx+', 0o600);
    } catch (e) {
      throw spoolError(e, this.path);
    }
    // Unlinked at once: the open handle keeps the bytes until it is closed or the process ends.
    await rm(this.path, { force: true });
    const chunks = this.chunks;
    this.chunks = [];
    this.memory = 0;
    for (const c of chunks) await this.writeAll(c);
  }

  private async writeAll(b: Buffer): Promise<void> {
    try {
      for (let at = 0; at < b.length; ) {
        const { bytesWritten } = await this.file!.write(b, at, b.length - at);
        at += bytesWritten;
      }
    } catch (e) {
      throw spoolError(e, this.path);
    }
  }
}

/** A failure to keep the bytes: a local write failure (exit 8), named and explained. */
function spoolError(e: unknown, path: string): CtxError {
  const cause = fsError(e, path, 'io');
  return new CtxError('io', `cannot keep a piped input to read it again (${cause.message.slice(path.length + 2)}); name a file instead of piping it, or free some space`, { path, cause: e });
}
