// Hostile and damaged cache state (issue 21.2, 21.3, 21.6, 21.8, 21.11): forged entries, a model that
// differs where a sampled fingerprint would not look, files left by killed runs, a cache path that is
// a file, and what other users can read.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdirSync, openSync, readdirSync, readFileSync, statSync, truncateSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { createReferenceBackend } from '../../src/backend/reference/index.js';
import { SessionCache } from '../../src/cache/store.js';
import { Session } from '../../src/engine/session.js';
import { resolveStrategy } from '../../src/engine/strategies/index.js';
import { fileSha256 } from '../../src/model/content-hash.js';
import { openModel } from '../../src/model/model.js';
import { PRESETS, writeRandomModel } from '../../tools/random-model.js';
import { isRoot, scratchDir } from '../helpers/fixtures.js';
import { tinyModel, tokens } from '../helpers/models.js';
import { ctxLimited, hostileModel, withinLimits } from './limits.js';

const META = { inputs: ['doc.txt'], model: 'tiny', modelDir: '/m', strategy: 's', backend: 'reference', numeric: 'f32', tokens: 40 };

async function savedEntry(dir: string, key: string, maxBytes?: number): Promise<SessionCache> {
  const model = tinyModel('tiny');
  const session = new Session(await createReferenceBackend(model), resolveStrategy(model.config, { strategy: 'full' }, 50));
  await session.feed(tokens(40, 3));
  const cache = new SessionCache(dir, { maxBytes });
  assert.equal((await cache.save(key, META, session.snapshot(), model.config.headDim)).kind, 'saved');
  return cache;
}

/**
 * Rewrites a saved entry with the header `edit` makes of its own, and a file of exactly the size that
 * header claims (sparse: it takes no disk) — consistent everywhere but the checksum. Returns the
 * payload's bytes.
 */
function rewriteHeader(path: string, edit: (header: { rows: number; headDim: number; arrays: { name: string; kind: string; length: number }[] }) => void): number {
  const good = readFileSync(path);
  const headerLength = good.readUInt32LE(12);
  const header = JSON.parse(good.subarray(16, 16 + headerLength).toString('utf8'));
  edit(header);
  const payload = header.arrays.reduce((n: number, a: { kind: string; length: number }) => n + (a.kind === 'f16' ? 2 : 4) * a.length, 0);
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - ((16 + json.length) % 8)) % 8, 0x20)]);
  const pre = Buffer.from(good.subarray(0, 16));
  pre.writeUInt32LE(json.length, 12);
  const fd = openSync(path, 'w');
  writeSync(fd, Buffer.concat([pre, json]));
  closeSync(fd);
  truncateSync(path, 16 + json.length + payload + 32);
  return payload;
}

/** The entry's header claims one f32 array of `payloadBytes`. */
function forge(path: string, payloadBytes: number): void {
  rewriteHeader(path, (h) => {
    h.arrays = [{ name: 'keys.0', kind: 'f32', length: payloadBytes / 4 }];
  });
}

describe('forged cache entries', () => {
  it('an entry larger than the cache cap (4.5 GiB, cap 4 GiB) is refused by its size before anything is read', { timeout: 20_000 }, async () => {
    const key = 'f'.repeat(64);
    const cache = await savedEntry(scratchDir('forged-4g'), key);
    forge(cache.pathOf(key), 4.5 * 1024 ** 3);
    const rss = process.memoryUsage.rss();
    const t0 = performance.now();
    const r = await cache.load(key);
    assert.equal(r.kind, 'discarded');
    if (r.kind === 'discarded') assert.match(r.message, /discarded a corrupt cache entry \(4\.5 GiB is more than the cache size cap 4 GiB/);
    assert.ok(performance.now() - t0 < 2000, `${performance.now() - t0} ms`);
    assert.ok(process.memoryUsage.rss() - rss < 200 * 1024 ** 2, 'nothing of its size was allocated');
  });

  it('a large entry within the cap whose arrays are forged is found by its checksum as it is read, holding at most one copy', { timeout: 60_000 }, async () => {
    // One pass (format.ts): arrays are read and hashed in place and returned only when the digest
    // matches; the memory a damaged entry takes is what a good entry of its size would, no more.
    const key = 'e'.repeat(64);
    const cache = await savedEntry(scratchDir('forged-big'), key, 1024 ** 3);
    const payload = forgeRows(cache.pathOf(key), 2 * 1024 ** 2); // 2 Mi rows × 256 bytes: 512 MiB of KV
    const rss = process.memoryUsage.rss();
    const r = await cache.load(key);
    assert.equal(r.kind, 'discarded');
    if (r.kind === 'discarded') assert.match(r.message, /checksum mismatch/);
    const grew = process.memoryUsage.rss() - rss;
    assert.ok(grew < payload + 200 * 1024 ** 2, `grew by ${grew / 2 ** 20} MB for a ${payload / 2 ** 20} MB payload`);
  });

  it('an array the header names that is not part of a session, or does not fit its KV shape, is refused before any is read', async () => {
    const key = 'd'.repeat(64);
    const cache = await savedEntry(scratchDir('forged-names'), key);
    forge(cache.pathOf(key), 64 * 1024 ** 2);
    const r = await cache.load(key);
    assert.equal(r.kind, 'discarded');
    if (r.kind === 'discarded') assert.match(r.message, /array keys\.0 is not part of a session/);
  });
});

/** The entry's header claims `rows` KV rows (every KV array that long, the rest as saved). Returns the payload's bytes. */
function forgeRows(path: string, rows: number): number {
  return rewriteHeader(path, (h) => {
    h.rows = rows;
    for (const a of h.arrays) if (/^(keys|values)\./.test(a.name)) a.length = rows * h.headDim;
  });
}

describe('model identity', () => {
  it('two models that differ outside any sampled block have different fingerprints', async () => {
    // Big enough that 16 sampled 64 KiB blocks (the old fingerprint) leave most of it unread.
    const spec = { ...PRESETS.tiny!, vocab: 32000, hidden: 64, intermediate: 128 };
    const a = join(scratchDir('model-a'), 'm');
    writeRandomModel(a, spec);
    const b = join(scratchDir('model-b'), 'm');
    mkdirSync(b);
    for (const f of readdirSync(a)) copyFileSync(join(a, f), join(b, f));
    const weights = join(b, 'model.safetensors');
    const bytes = readFileSync(weights);
    const headerEnd = 8 + Number(bytes.readBigUInt64LE(0));
    bytes[headerEnd + 100_000] ^= 0xff; // after the first sampled block, far before the second
    writeFileSync(weights, bytes);
    assert.notEqual(await openModel(b).weights.fingerprint(), await openModel(a).weights.fingerprint());
  });

  it('a file hash is remembered by identity, and computed again when the file is rewritten', async () => {
    const cacheDir = scratchDir('hashes');
    const file = join(scratchDir('hashed'), 'w.bin');
    writeFileSync(file, Buffer.alloc(1 << 20, 7));
    const first = await fileSha256(file, { cacheDir });
    assert.equal(readdirSync(join(cacheDir, 'file-hashes')).length, 1);
    assert.equal(await fileSha256(file, { cacheDir }), first);
    // Same size, same mtime, other bytes: the change time still differs.
    const { atime, mtime } = statSync(file);
    const other = Buffer.alloc(1 << 20, 7);
    other[12345] = 8;
    writeFileSync(file, other);
    utimesSync(file, atime, mtime); // what a forger would restore; the change time moves regardless
    assert.notEqual(await fileSha256(file, { cacheDir }), first);
  });
});

describe('what the cache leaves and who can read it', () => {
  it('entries and the sessions folder are private to the user (0600/0700)', async () => {
    const dir = join(scratchDir('private'), 'sessions');
    const cache = await savedEntry(dir, 'a'.repeat(64));
    assert.equal(statSync(dir).mode & 0o777, 0o700);
    assert.equal(statSync(cache.pathOf('a'.repeat(64))).mode & 0o777, 0o600);
  });

  it('temp files of killed runs are removed by the next run that opens the cache', async () => {
    const dir = scratchDir('stale');
    await savedEntry(dir, 'b'.repeat(64));
    writeFileSync(join(dir, `.tmp-${'c'.repeat(16)}-999999999.5-0000aaaa`), Buffer.alloc(4096));
    const next = new SessionCache(dir);
    assert.equal((await next.load('d'.repeat(64))).kind, 'miss');
    assert.deepEqual(readdirSync(dir), [`${'b'.repeat(64)}.ctxs`]);
  });

  it('a cache path that is a file is one clear line, a write failure (8), not an input error (3)', async () => {
    const file = join(scratchDir('cache-file'), 'cache');
    writeFileSync(file, 'not a folder');
    const limits = { timeoutMs: 20_000, maxRssMb: 400 };
    const r = withinLimits(await ctxLimited(['cache', 'ls'], limits, { env: { CTX_CACHE_DIR: file } }), limits);
    assert.equal(r.code, 8, r.stderr);
    assert.match(r.stderr, /^ctx: .*cache\/sessions: the session cache cannot be read: .*is a file, not a folder/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });

  it('a read-only cache: the answer still comes, with one warning that says so', { skip: isRoot ? false : 'needs root to mount a read-only tmpfs' }, async (t) => {
    const mnt = join(scratchDir('ro-cache'), 'mnt');
    mkdirSync(mnt);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=32k', 'tmpfs', mnt], { stdio: 'pipe' });
    } catch (e) {
      t.skip(`mount -t tmpfs failed here: ${(e as Error).message.split('\n')[0]}`);
      return;
    }
    try {
      const doc = join(scratchDir('ro-doc'), 'doc.txt');
      writeFileSync(doc, 'The answer is 42.\n');
      const limits = { timeoutMs: 60_000, maxRssMb: 600 };
      const r = withinLimits(
        await ctxLimited(['ask', doc, 'q?', '-m', hostileModel('ro'), '--backend', 'reference', '--max-tokens', '3'], limits, { env: { CTX_CACHE_DIR: mnt } }),
        limits,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /could not save the document to the cache \(.*mnt\/sessions is on a read-only file system; set CTX_CACHE_DIR to a writable folder, or use --no-cache\)/);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });
});
