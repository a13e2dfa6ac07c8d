// The cpu backend: the contract (../contract.ts) on ONNX Runtime's CPU execution provider, with
// graphs ctx builds itself over weights converted once into the cache. In f32 with f32 KV it must
// give the reference backend's logits to float32 rounding; q8/q4 weights and f16 KV (the default)
// trade that for memory.
//
//   weights.ts    the model's tensors converted once (f32, or 8-bit linears / 4-bit MLP and LM head;
//                 a GGUF file's as stored: gguf-weights.ts)
//   graphs.ts, attention.ts, vote.ts, keys.ts   the ONNX graphs: projections + MLP, attention,
//                 TokenSelect's vote, the keys attention reads (selected rows gathered and rotated, f16 cast)
//   attention-softplus.ts   the attention graph of softplus-attention models
//   native-loops.ts   the vote, the keys and a decoded row's attention in the native addon's loops, when it has them
//   sessions.ts   onnxruntime-node, session options, graph files
//   sequence.ts   KV storage (kv-store.ts, half.ts) and the step
//   embedding.ts  embedding rows read on demand;  profile.ts  where step time goes (benchmarks)

import { availableParallelism } from 'node:os';
import { CtxError } from '../../errors.js';
import { ggufWeights, type Model } from '../../model/model.js';
import { ctxCacheDir } from '../../model/paths.js';
import type { Backend, BackendOptions, Sequence } from '../contract.js';
import { Embedding } from './embedding.js';
import type { NBitsAccuracy } from './graphs.js';
import { StepProfile } from './profile.js';
import { KvStore, type KvDtype } from './kv-store.js';
import { nativeLoops, type NativeLoops } from './native-loops.js';
import { CpuSequence } from './sequence.js';
import { loadOrt, openSessions, releaseLoadLeftovers, releaseSessions, type CpuSessions, type Ort } from './sessions.js';
import { convertedWeights, type WeightDType } from './weights.js';

export interface CpuBackendOptions extends BackendOptions {
  /** Hears about slow one-time work (weight conversion). */
  onProgress?: (message: string) => void;
  /** MatMulNBits' activation precision (graphs.ts): 4, int8 (default), or 1, float32 (exact; slow, for checks). */
  nbitsAccuracy?: NBitsAccuracy;
}

export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  /** The weights' mode, and the KV dtype unless f32: "q8 kv-f16", "f32" (part of cache keys). */
  readonly numeric: string;
  readonly model: Model;
  readonly kvBytesPerRow: number;
  readonly profile = new StepProfile();

  constructor(
    model: Model,
    dtype: WeightDType,
    readonly kvDtype: KvDtype,
    readonly ort: Ort,
    readonly sessions: CpuSessions,
    readonly embedding: Embedding,
    /** The vote, the keys attention reads and a decoded row's attention in native loops; null: ORT graphs (vote.ts, keys.ts, attention.ts). */
    readonly native: NativeLoops | null = null,
  ) {
    const c = model.config;
    this.model = model;
    this.numeric = kvDtype === 'f32' ? dtype : `${dtype} kv-${kvDtype}`;
    this.kvBytesPerRow = KvStore.bytesPerRow(kvDtype, c.numLayers, c.numKvHeads, c.headDim);
  }

  newSequence(): Sequence {
    return new CpuSequence(this);
  }

  async dispose(): Promise<void> {
    await releaseSessions(this.sessions);
    this.embedding.close();
  }
}

export async function createCpuBackend(model: Model, opts: CpuBackendOptions = {}): Promise<Backend> {
  const gguf = ggufWeights(model) !== null;
  // A GGUF file's weights run as the file stores them (gguf-weights.ts); --dtype converts safetensors only.
  if (gguf && opts.dtype !== undefined && opts.dtype !== 'gguf') {
    throw new CtxError('usage', `--dtype ${opts.dtype} does not apply to a GGUF file: the cpu backend runs its weights as stored (leave --dtype out)`, { path: model.dir });
  }
  const dtype = (gguf ? 'gguf' : (opts.dtype ?? 'f32')) as WeightDType;
  if (dtype !== 'f32' && dtype !== 'q8' && dtype !== 'q4' && dtype !== 'gguf') throw new CtxError('usage', `the cpu backend runs --dtype f32, q8 or q4, not "${opts.dtype}"`);
  const kvDtype = (opts.kvDtype ?? 'f16') as KvDtype;
  if (kvDtype !== 'f16' && kvDtype !== 'f32') throw new CtxError('usage', `the cpu backend stores KV as --kv-dtype f16 or f32, not "${opts.kvDtype}"`);
  const ort = await loadOrt();
  const weights = await convertedWeights(model, dtype, opts.cacheDir ?? ctxCacheDir(), opts.onProgress, opts.signal);
  const sessions = await openSessions(ort, model, weights, kvDtype, opts.threads, opts.nbitsAccuracy);
  releaseLoadLeftovers(weights);
  return new CpuBackend(model, dtype, kvDtype, ort, sessions, new Embedding(model, weights), nativeLoops(opts.threads ?? availableParallelism()));
}
