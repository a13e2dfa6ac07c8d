// What the weights' identity costs (src/model/content-hash.ts): the SHA-256 of one big file, first
// computed, then remembered. Make a file first, and delete it afterwards:
//
//   head -c 4G /dev/urandom > /tmp/ctx-4g.bin
//   node --import tsx bench/model/content-hash.ts /tmp/ctx-4g.bin
//   rm /tmp/ctx-4g.bin
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileSha256 } from '../../src/model/content-hash.js';

const file = process.argv[2];
if (!file) throw new Error('usage: content-hash.ts <big file>');
const cache = mkdtempSync(join(tmpdir(), 'ctx-hash-bench-'));
try {
  const gib = statSync(file).size / 1024 ** 3;
  let t0 = performance.now();
  const first = await fileSha256(file, { cacheDir: cache });
  const cold = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const again = await fileSha256(file, { cacheDir: cache });
  const warm = performance.now() - t0;
  if (first !== again) throw new Error('remembered hash differs');
  console.log(`${gib.toFixed(2)} GiB: first use ${cold.toFixed(1)} s (${(gib / cold).toFixed(2)} GiB/s), remembered ${warm.toFixed(2)} ms`);
} finally {
  rmSync(cache, { recursive: true, force: true });
}
