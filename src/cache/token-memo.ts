// What encoding a document gave, kept so that the next run on the same text with the same tokenizer
// does not encode it again: the count and digest of its ids (all the session cache's key needs of
// them, key.ts) and where each source ends. A session restored from the cache never reads the ids;
// a run that does read them encodes them again and checks them against this record
// (engine/document-tokens.ts). Encoding the 261-page PDF takes seconds; this record, milliseconds.
//
//   <dir>/<key>.json   { format, count, sha256, sourceEnds: [[path, end], …] }
//
// The key is the SHA-256 of what decides the ids: this format, ctx's version (its encoder), the
// tokenizer's files (tokenizer.json and its config, hashed each time; a GGUF file's SHA-256 as
// model/content-hash.ts remembers it) and every segment's source path and text. Like the other caches: the folder is private, a save is atomic
// (a temp file, then rename), and a problem only means encoding again.

import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Segment } from '../input/document.js';
import { fileSha256 } from '../model/content-hash.js';
import { makePrivateDir } from '../model/paths.js';
import type { TokenDigest } from './key.js';

const FORMAT = 1;
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface TokenRecord {
  digest: TokenDigest;
  /** Per source path: the document token where it ends, in order. */
  sourceEnds: Array<[string, number]>;
}

export class TokenMemo {
  constructor(
    readonly dir: string,
    /** Where file hashes are remembered (the ctx cache folder). */
    private readonly hashDir: string,
  ) {}

  /**
   * The key of these segments under the tokenizer read from `tokenizerDir` (a model folder or a GGUF
   * file), or null when its files cannot be read (then nothing is kept).
   */
  async keyOf(tokenizerDir: string, segments: AsyncIterable<Segment> | Iterable<Segment>): Promise<string | null> {
    const h = createHash('sha256');
    h.update(`ctx token memo ${FORMAT}\0${VERSION}\0`);
    try {
      if (statSync(tokenizerDir).isFile()) {
        h.update(`${await fileSha256(tokenizerDir, { cacheDir: this.hashDir })}\0`); // a GGUF file: its hash is remembered (the model's fingerprint made it)
      } else {
        // tokenizer.json and its config, read again (megabytes at most): no bounded run here, so a
        // Ctrl-C now reaches the process's handler and stops the run before encoding starts.
        for (const f of ['tokenizer.json', 'tokenizer_config.json'].map((n) => join(tokenizerDir, n)).filter((n) => existsSync(n))) {
          h.update(createHash('sha256').update(await readFile(f)).digest('hex'));
        }
      }
    } catch (e) {
      if (typeof (e as NodeJS.ErrnoException).code === 'string' && (e as NodeJS.ErrnoException).code!.startsWith('E')) return null; // a file system error
      throw e;
    }
    for await (const s of segments) {
      h.update(`${Buffer.byteLength(s.source.path)}:${s.source.path}${Buffer.byteLength(s.text)}:`);
      h.update(s.text);
    }
    return h.digest('hex');
  }

  /** The record kept under `key`, or null (none, or one that does not hold up: it is removed). */
  async load(key: string): Promise<TokenRecord | null> {
    const path = join(this.dir, `${key}.json`);
    try {
      const r = JSON.parse(await readFile(path, 'utf8')) as { format: number; count: number; sha256: string; sourceEnds: Array<[string, number]> };
      const ok = r.format === FORMAT && Number.isSafeInteger(r.count) && r.count > 0 && /^[0-9a-f]{64}$/.test(r.sha256) && Array.isArray(r.sourceEnds);
      if (ok) return { digest: { count: r.count, sha256: r.sha256 }, sourceEnds: r.sourceEnds };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    }
    await rm(path, { force: true }).catch(() => {});
    return null;
  }

  /** Keeps `record` under `key`; a failure only means encoding again next time. */
  async save(key: string, record: TokenRecord): Promise<void> {
    const tmp = join(this.dir, `.tmp-${key.slice(0, 16)}-${randomBytes(4).toString('hex')}`);
    try {
      makePrivateDir(this.dir);
      await writeFile(tmp, JSON.stringify({ format: FORMAT, count: record.digest.count, sha256: record.digest.sha256, sourceEnds: record.sourceEnds }), { mode: 0o600 });
      await rename(tmp, join(this.dir, `${key}.json`));
    } catch {
      await rm(tmp, { force: true }).catch(() => {});
    }
  }

  /** Removes every record (`ctx cache clear`); returns how many. */
  async clear(): Promise<number> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    await rm(this.dir, { recursive: true, force: true });
    return names.filter((n) => n.endsWith('.json')).length;
  }
}
