// This machine's measured peak: the best GEMM rate ONNX Runtime reaches here, float32 (MLAS SGEMM
// on a prepacked weight) and 8-bit (MatMulNBits, int8 dot products), on the largest matrix shape
// of the benchmark model (rows × 896 → 4864, the MLP's gate/up). Prints one JSON line.
//   node --import tsx bench/cpu/peak.ts <threads> <work-dir>

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { Graph } from '../../src/backend/cpu/graph.js';

const threads = Number(process.argv[2] ?? 2);
const work = process.argv[3] ?? 'bench/work/cpu';
mkdirSync(work, { recursive: true });
const [M, K, N] = [1024, 896, 4864];

async function rate(label: string, build: (g: Graph, x: string) => string): Promise<{ label: string; gflops: number }> {
  const g = new Graph(label);
  const x = g.input('x', 'float', ['m', K]);
  g.output(build(g, x), 'y', 'float', ['m', N]);
  const path = join(work, `peak-${label}.onnx`);
  writeFileSync(path, g.encode());
  const s = await ort.InferenceSession.create(path, { executionProviders: ['cpu'], intraOpNumThreads: threads, graphOptimizationLevel: 'all' });
  const feeds = { x: new ort.Tensor('float32', new Float32Array(M * K).map(() => Math.random() - 0.5), [M, K]) };
  for (let i = 0; i < 3; i++) await s.run(feeds);
  let best = Infinity;
  for (let i = 0; i < 12; i++) {
    const t = performance.now();
    await s.run(feeds);
    best = Math.min(best, performance.now() - t);
  }
  await s.release();
  return { label, gflops: (2 * M * K * N) / best / 1e6 };
}

const w = new Float32Array(N * K).map(() => Math.random() - 0.5);
const f32 = await rate('f32', (g, x) => g.op('Gemm', [x, g.inline('w', 'float', [N, K], new Uint8Array(w.buffer))], { transB: 1 }));
const codes = new Uint8Array(N * K).map(() => 100 + Math.floor(Math.random() * 56));
const scales = new Float32Array((N * K) / 32).fill(0.01);
const q8 = await rate('q8', (g, x) =>
  g.op('MatMulNBits', [x, g.inline('q', 'uint8', [N, K / 32, 32], codes), g.inline('s', 'float', [(N * K) / 32], new Uint8Array(scales.buffer))],
    { K, N, bits: 8, block_size: 32, accuracy_level: 4 }, { domain: 'com.microsoft' }));
console.log(JSON.stringify({ threads, shape: [M, K, N], f32: f32.gflops, q8: q8.gflops }));
