#!/usr/bin/env node
// Builds the native addon (native/) with cmake-js. Optional: ctx runs without it (the cuda
// backend then reports why it is unavailable), so a failure here prints one line and exits 0.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
if (!existsSync(`${root}native/CMakeLists.txt`)) process.exit(0);
if (process.env.CTX_SKIP_NATIVE === '1') {
  console.log('ctx: native addon skipped (CTX_SKIP_NATIVE=1)');
  process.exit(0);
}
const cmakeJs = `${root}node_modules/cmake-js/bin/cmake-js`;
const r = spawnSync(process.execPath, [cmakeJs, 'compile', '-d', 'native', '-O', 'native/build'], {
  cwd: root,
  stdio: process.env.CTX_VERBOSE_BUILD ? 'inherit' : ['ignore', 'pipe', 'pipe'],
  encoding: 'utf8',
});
if (r.status !== 0) {
  const log = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
  console.log(`ctx: native addon not built (cmake-js exited ${r.status}); the cuda backend is unavailable, cpu is used.\n${log}`);
  process.exit(0);
}
const cuda = /CTX_CUDA=ON/.test(r.stdout ?? '') ? 'with CUDA' : 'CPU only (no CUDA compiler found)';
console.log(`ctx: native addon built, ${cuda}`);
