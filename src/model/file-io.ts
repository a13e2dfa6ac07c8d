// Reading and writing model files: one place for opening a file for reading (its errors named as a
// model file's), reading an exact byte range, and writing a file whole or not at all. Used by the
// safetensors and GGUF readers and writers.

import { closeSync, fsyncSync, openSync, readSync, renameSync, rmSync } from 'node:fs';
import { CtxError, fsError } from '../errors.js';

/** Calls `f` with `path` open for reading, and closes it whatever happens. Open errors name `path`. */
export function withFileForReading<T>(path: string, f: (fd: number) => T): T {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw fsError(e, path, 'model');
  }
  try {
    return f(fd);
  } finally {
    closeSync(fd);
  }
}

/** Fills `buf` from byte `position` of the open file; a file that ends first is an error naming `what`. */
export function readExactly(fd: number, buf: Buffer, position: number, path: string, what = ''): void {
  for (let done = 0; done < buf.length; ) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new CtxError('model', `unexpected end of file${what} at byte ${position + done} (the file shrank?)`, { path });
    done += n;
  }
}

/**
 * Writes `path` through a temporary file beside it (`write` gets its descriptor), flushed to disk and
 * renamed into place: a reader sees the old file or the whole new one, never half of it. On failure
 * the temporary file is removed; file-system errors name `path`.
 */
export function writeFileAtomically(path: string, write: (fd: number) => void, mode = 0o644): void {
  const tmp = `${path}.tmp-${process.pid}`;
  let fd: number | null = null;
  try {
    fd = openSync(tmp, 'w', mode);
    write(fd);
    fsyncSync(fd);
    closeSync(fd);
    fd = null;
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== null) closeSync(fd);
    rmSync(tmp, { force: true });
    if ((e as NodeJS.ErrnoException).code) throw fsError(e, path, 'io');
    throw e;
  }
}
