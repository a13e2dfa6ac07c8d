#!/usr/bin/env node
// Builds the native backend (native/, see native/README.md) with cmake-js:
//   native/build/Release/ctx_native.node        the N-API addon (always; needs cmake and a C++17 compiler)
//   native/build/Release/ctx_cuda_kernels.so    the CUDA kernels (only when nvcc is found)
// Optional: ctx runs without it (the cuda backend then reports why it is unavailable), so a failed
// build prints a short note and exits 0. Installing never breaks on a machine without cmake or nvcc.
//
// Environment:
//   CTX_SKIP_NATIVE=1       skip the build
//   CTX_NO_CUDA=1           build the addon only, even where nvcc exists
//   CTX_CUDA_ARCHS="90"     CUDA architectures (default 80-real;86-real;89-real;90)
//   CTX_VERBOSE_BUILD=1     show cmake's output
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
if (!existsSync(`${root}native/CMakeLists.txt`)) process.exit(0);
if (process.env.CTX_SKIP_NATIVE === '1') {
  console.log('ctx: native addon skipped (CTX_SKIP_NATIVE=1)');
  process.exit(0);
}
if (spawnSync('cmake', ['--version'], { stdio: 'ignore' }).status !== 0) {
  console.log('ctx: native addon not built (cmake not found); the cuda backend is unavailable, cpu is used.');
  process.exit(0);
}

const out = `${root}native/build`;
const cudaLib = `${out}/Release/ctx_cuda_kernels.so`;
// A library left from an earlier build with nvcc must not outlive a build without it.
rmSync(cudaLib, { force: true });

const args = [`${root}node_modules/cmake-js/bin/cmake-js`, 'compile', '-d', 'native', '-O', 'native/build'];
if (process.env.CTX_NO_CUDA === '1') args.push('--CDCTX_CUDA=OFF');
if (process.env.CTX_CUDA_ARCHS) args.push(`--CDCMAKE_CUDA_ARCHITECTURES=${process.env.CTX_CUDA_ARCHS}`);
const verbose = Boolean(process.env.CTX_VERBOSE_BUILD);
const t0 = Date.now();
const r = spawnSync(process.execPath, args, {
  cwd: root,
  stdio: verbose ? 'inherit' : ['ignore', 'pipe', 'pipe'],
  encoding: 'utf8',
});
const seconds = ((Date.now() - t0) / 1000).toFixed(0);
if (r.status !== 0) {
  const log = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
  console.log(`ctx: native addon not built (cmake-js exited ${r.status}); the cuda backend is unavailable, cpu is used.${log ? `\n${log}` : ''}`);
  process.exit(0);
}
const what = existsSync(cudaLib)
  ? 'with the CUDA kernels (ctx_cuda_kernels.so)'
  : process.env.CTX_NO_CUDA === '1'
    ? 'CPU only (CTX_NO_CUDA=1)'
    : 'CPU only: no CUDA compiler (nvcc) found, the cuda backend will say so';
console.log(`ctx: native addon built in ${seconds} s, ${what}`);
