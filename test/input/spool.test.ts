// The spool of an input that cannot be read twice: in memory while small, then in a file that no
// other process can open and that nothing leaves behind.
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Spool } from '../../src/input/spool.js';
import { scratchDir } from '../helpers/fixtures.js';

async function all(spool: Spool): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of spool.read()) parts.push(p);
  return Buffer.concat(parts);
}

describe('Spool', () => {
  it('gives back exactly what was written, from memory and then from its file', async () => {
    const dir = join(scratchDir('spool'), 'inner');
    let asked = 0;
    const spool = new Spool(() => (asked++, dir), 1000);
    const chunks = Array.from({ length: 50 }, (_, i) => Buffer.alloc(97, i));
    await spool.write(chunks[0]!);
    assert.deepEqual(await all(spool), chunks[0], 'from memory');
    assert.equal(asked, 0, 'no file while it fits in memory');
    for (const c of chunks.slice(1)) await spool.write(c);
    assert.equal(asked, 1);
    assert.deepEqual(readdirSync(dir), [], 'the file is unlinked as soon as it is open');
    assert.deepEqual(await all(spool), Buffer.concat(chunks));
    assert.deepEqual(await all(spool), Buffer.concat(chunks), 'read again');
    assert.equal(spool.bytes, 50 * 97);
    await spool.close();
  });

  it('a folder it cannot write to is a write failure (exit 8) naming the file', async () => {
    const file = join(scratchDir('spool-bad'), 'a-file');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(file, 'x');
    const spool = new Spool(() => join(file, 'below'), 10);
    await assert.rejects(spool.write(Buffer.alloc(20)), (e: Error & { exitCode?: number }) => e.exitCode === 8 && /a-file\/below\/\.tmp-spool-.*: cannot keep a piped input to read it again/.test(e.message));
  });
});
