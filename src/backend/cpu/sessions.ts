// ONNX Runtime for the cpu backend: the module itself, the session options, and the sessions of
// every graph (graphs.ts, attention.ts, vote.ts), whose bytes are cached beside the converted
// weights under a content-hashed name so a second run opens them without writing anything.

import { availableParallelism } from 'node:os';
import { createHash } from 'node:crypto';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as ortTypes from 'onnxruntime-node';
import type { Model } from '../../model/model.js';
import { buildAttentionGraph, type AttentionSessions } from './attention.js';
import { buildSoftplusAttentionGraph } from './attention-softplus.js';
import { buildWeightGraphs, type NBitsAccuracy } from './graphs.js';
import { buildVoteGraph } from './vote.js';
import { storedLinear, type ConvertedWeights, type WeightDType } from './weights.js';

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

/** Builds every graph of `model` over the converted weights and opens a session on each. */
export async function openSessions(ort: Ort, model: Model, weights: ConvertedWeights, dtype: WeightDType, threads?: number, accuracy?: NBitsAccuracy): Promise<CpuSessions> {
  const c = model.config;
  const open = (kind: string, bytes: Uint8Array, prepack = true, arena = false) =>
    ort.InferenceSession.create(graphFile(weights.dir, kind, bytes), sessionOptions(threads, prepack, arena));
  const graphs = buildWeightGraphs(c, weights.layout, accuracy);
  const first = await open('first', graphs.first);
  const layers: ortTypes.InferenceSession[] = [];
  for (let l = 0; l < c.numLayers; l++) layers.push(await open(`layer${l}`, graphs.layers[l]));
  // Prepacked unless the LM head is a float32 matrix (see sessionOptions).
  const head = await open('head', graphs.head, storedLinear(weights.layout, 'lmHead').kind !== 'f32');
  const attention: AttentionSessions = c.softplus
    ? { softplus: await open('attention-softplus', buildSoftplusAttentionGraph(c), true, true) }
    : {
        matmul: await open('attention-matmul', buildAttentionGraph(c, 'matmul'), true, true),
        fused: await open('attention-fused', buildAttentionGraph(c, 'fused'), true, true),
      };
  const vote = await open('vote', buildVoteGraph(c), true, true);
  return { first, layers, head, attention, vote };
}

/** Releases every session. */
export async function releaseSessions(s: CpuSessions): Promise<void> {
  for (const session of [s.first, ...s.layers, s.head, ...Object.values(s.attention), s.vote]) await session!.release();
}
