// ONNX Runtime for the cpu backend: the module itself, the session options, and the sessions of
// every graph (graphs.ts, attention.ts, vote.ts, keys.ts), whose bytes are cached beside the converted
// weights under a content-hashed name so a second run opens them without writing anything.

import { availableParallelism } from 'node:os';
import { createHash } from 'node:crypto';
import { existsSync, realpathSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as ortTypes from 'onnxruntime-node';
import type { Model } from '../../model/model.js';
import { loadAddon } from '../native/addon.js';
import { buildAttentionGraph, type AttentionSessions } from './attention.js';
import { buildSoftplusAttentionGraph } from './attention-softplus.js';
import { buildWeightGraphs, type NBitsAccuracy } from './graphs.js';
import { buildGatherGraph, buildWidenGraph } from './keys.js';
import type { KvDtype } from './kv-store.js';
import { buildVoteGraph } from './vote.js';
import { storedLinear, type ConvertedWeights } from './weights.js';

export type Ort = typeof ortTypes;

/** The sessions a cpu backend runs: weight graphs, attention graphs (softmax or softplus) and the vote graph. */
export interface CpuSessions {
  /** x -> qkv of layer 0. */
  first: ortTypes.InferenceSession;
  /** Layer l: o_proj, MLP, then the next layer's qkv. */
  layers: ortTypes.InferenceSession[];
  /** Final norm and LM head. */
  head: ortTypes.InferenceSession;
  attention: AttentionSessions;
  vote: ortTypes.InferenceSession;
  /** TokenSelect's selected rows gathered and rotated (keys.ts). */
  gather: ortTypes.InferenceSession;
  /** A dense step's f16 keys and values cast to float32 (keys.ts); null with f32 KV. */
  widen: ortTypes.InferenceSession | null;
}

/** Loads onnxruntime-node, with its telemetry off. */
export async function loadOrt(): Promise<Ort> {
  // ORT 1.30's Linux build ships Microsoft's telemetry SDK: unless disabled it writes a device id
  // under ~/.cache/Microsoft, /tmp/mat-debug-<pid>.log files, and tries HTTPS uploads. ctx is a
  // local tool; it never phones home.
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
  const mod = (await import('onnxruntime-node')) as Ort & { default?: Ort };
  return mod.default ?? mod;
}

/** Writes graph bytes into the weights folder under a content-hashed name (atomic); returns the path. */
function graphFile(dir: string, kind: string, bytes: Uint8Array): string {
  const hash = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
  const path = join(dir, `${kind}-${hash}.onnx`);
  if (!existsSync(path)) {
    const tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  }
  return path;
}

// Where ONNX Runtime holds weights, and what the options below do about it — measured with RSS
// (/proc/self/smaps, heaptrack) on the Qwen2.5-0.5B shape, q8, 2 threads:
//   - External data: each initializer is memory-mapped from weights.bin (64 KiB-aligned offsets);
//     its pages count in RSS once touched.
//   - Prepacking: Gemm (f32) and MatMulNBits copy B into MLAS's layout (anonymous memory) and ORT
//     then drops the mapped original, so a packed weight is held once in steady state. While a
//     session packs, original and copy are both resident, so the head, the largest, is opened
//     first (load peak before: 1,740 MiB with the f32 head opened last; now 720).
//   - MatMulNBits (accuracy level 4, x86) packs its scales into that buffer too but reports them as
//     not packed, so ORT keeps the mapped originals: 35 MiB for the beacon variant of Qwen2.5-0.5B
//     (MLP and head in blocks of 64, weights.ts), held twice. Its kernels read the packed copy: after
//     clearing the pages' referenced bits (/proc/self/clear_refs), a step and a decoded token touched
//     3.4 of the 35 MiB (the pages of the norms and biases among them). releaseLoadLeftovers below
//     drops those pages from RSS after loading; a page a step reads comes back from the page cache.
//     The packed layout takes 40 bytes per block of 32 (codes, scale, block sum) — 1.25 bytes per
//     weight; 72 per block of 64 — 1.125. Unpacked it would dequantize the whole matrix on every
//     call, so it is always prepacked. An f32 Gemm left unpacked reads the mapping directly, as fast
//     (the f32 head: disable_prepacking).
//   - What onnxruntime-node does not offer: shared initializers (AddInitializer), a prepacked-weights
//     container, env allocators (session.use_env_allocators needs one registered on the Env), run
//     options' arena shrinkage; session.use_ort_model_bytes_directly / _for_initializers concern
//     ORT-format models loaded from bytes, not .onnx files with external data. Each weight lives in
//     exactly one session (graphs.ts), so none is held twice.
//   - Transients: sessions without an arena take a call's intermediates from malloc, which keeps what
//     was freed; the weight sessions' peak follows the rows per call (sequence.ts, ROW_CHUNK), the
//     attention arenas the score budget (attention.ts). Outputs are written into the caller's
//     buffers (pre-allocated outputs), never into a fresh result per call. enableMemPattern on the
//     weight sessions raised the peak (+200–800 MiB). glibc's MALLOC_ARENA_MAX=1 or a fixed
//     MALLOC_MMAP_THRESHOLD_ lowered it too, but must be set before the process starts, and the
//     threshold halved prefill speed (a page fault per fresh activation page).

/**
 * Session options. Weight sessions: no arena (each of the L + 2 would keep its peak activations for
 * good). Attention and vote sessions: an arena, whose peak is bounded by the score budget
 * (attention.ts) — without one, every call page-faults its fresh score tensors, and runs 3x slower
 * (measured).
 */
function sessionOptions(threads: number | undefined, prepack: boolean, arena: boolean): ortTypes.InferenceSession.SessionOptions {
  return {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads ?? availableParallelism(),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableMemPattern: false, // shapes change every step
    enableCpuMemArena: arena,
    extra: {
      session: {
        // Every session owns an intra-op thread pool (the Node API has no global pool). With
        // spinning, a finished session's idle workers keep busy-waiting while the next session
        // runs: on two cores that made decoding 10x slower (0.4 vs 4.4 tokens/s, Qwen2.5-0.5B shape).
        intra_op: { allow_spinning: '0' },
        // Prepacking copies a weight into MLAS's layout while the original (memory-mapped from
        // weights.bin) is still resident: for the float32 LM head (544 MB) that doubles the peak
        // at load. Unpacked, that head runs as fast (measured) and stays a file mapping. (A
        // quantized head is prepacked: MatMulNBits needs its packed layout for the int8 kernels.)
        ...(prepack ? {} : { disable_prepacking: '1' }),
      },
    },
  };
}

/**
 * Builds every graph of `model` over the converted weights and opens a session on each. The LM
 * head (the largest matrix) is opened first: while a session prepacks a weight, the weight's file
 * pages are resident beside its packed copy, and that transient is smallest before the rest is loaded.
 */
export async function openSessions(ort: Ort, model: Model, weights: ConvertedWeights, kvDtype: KvDtype, threads?: number, accuracy?: NBitsAccuracy): Promise<CpuSessions> {
  const c = model.config;
  const open = (kind: string, bytes: Uint8Array, prepack = true, arena = false) =>
    ort.InferenceSession.create(graphFile(weights.dir, kind, bytes), sessionOptions(threads, prepack, arena));
  const graphs = buildWeightGraphs(c, weights.layout, accuracy);
  // Prepacked unless the LM head is a float32 matrix (see sessionOptions).
  const head = await open('head', graphs.head, storedLinear(weights.layout, 'lmHead').kind !== 'f32');
  const first = await open('first', graphs.first);
  const layers: ortTypes.InferenceSession[] = [];
  for (let l = 0; l < c.numLayers; l++) layers.push(await open(`layer${l}`, graphs.layers[l]));
  const attention: AttentionSessions = c.softplus
    ? { softplus: await open('attention-softplus', buildSoftplusAttentionGraph(c), true, true) }
    : {
        matmul: await open('attention-matmul', buildAttentionGraph(c, 'matmul'), true, true),
        fused: await open('attention-fused', buildAttentionGraph(c, 'fused'), true, true),
      };
  const vote = await open('vote', buildVoteGraph(c, kvDtype), true, true);
  // The keys graphs write only into pre-allocated outputs: no arena.
  const gather = await open('gather', buildGatherGraph(c, kvDtype));
  const widen = kvDtype === 'f16' ? await open('widen', buildWidenGraph(c)) : null;
  return { first, layers, head, attention, vote, gather, widen };
}

/**
 * Gives back what loading left resident that no step needs, once every session is open: the pages
 * of weights.bin that ORT mapped and keeps but does not read (the MatMulNBits scales above: 35 MiB
 * on the benchmark's q8 beacon model), and glibc's free heap memory left by packing (9 MiB there).
 * Needs the native addon (madvise and malloc_trim have no Node API); without it nothing changes.
 */
export function releaseLoadLeftovers(weights: ConvertedWeights): void {
  const addon = loadAddon();
  addon?.releaseFilePages?.(realpathSync(join(weights.dir, weights.layout.file)));
  addon?.trimHeap?.();
}

/** Releases every session. */
export async function releaseSessions(s: CpuSessions): Promise<void> {
  for (const session of [s.first, ...s.layers, s.head, ...Object.values(s.attention), s.vote, s.gather, s.widen]) await session?.release();
}
