// The N-API addon native/build/Release/ctx_native.node (native/src/addon.cc): its interface, how it
// is found and loaded, the GPU probe, and the weight spec it loads a model from.
//
// The addon always builds. It holds a model's weights and sequences on one of two kernel sets:
// the CUDA kernels in ctx_cuda_kernels.so (opened at run time, only when a GPU is present), or
// plain C++ loops on the host, which make the native backend testable without a GPU.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { CtxError } from '../../errors.js';
import type { SignalCatcher } from '../../model/bounded-run.js';
import { ggufWeights, safetensorsWeights, type Model } from '../../model/model.js';
import { distinctTensors, type Modules } from '../../model/tensors.js';

export interface DeviceInfo {
  name: string;
  memoryBytes: number;
  /** e.g. "9.0" */
  computeCapability: string;
  /** CUDA driver version, e.g. "13.0" */
  driver: string;
}

export interface DeviceProbe {
  available: boolean;
  /** Why no GPU can be used (when !available). */
  reason?: string;
  devices: DeviceInfo[];
}

interface AddonProbe {
  available: boolean;
  reason?: string;
  library: string | null;
  devices: Array<DeviceInfo & { freeMemoryBytes: number; multiprocessors: number; runtime: string }>;
}

/** A sequence's stored rows as the addon holds them: per layer, keys (pre-RoPE) and values [rows, Hkv·D] float32. */
export interface AddonRows {
  rows: number;
  keys: Float32Array[];
  values: Float32Array[];
}

/** A step's rows and what to compute for them (native/src/sequence.h, StepInput). */
export interface AddonStep {
  tokens: Int32Array;
  beacon?: Uint8Array;
  logitRows: Int32Array;
  invFreq: Float32Array;
  ropeScale: number;
  /** Multiplies the rotated queries (CLEX's log_scale); absent = 1. */
  queryScale?: number;
  /** TokenSelect: each layer's q̄ is the mean of its queries rotated at meanQueryAt + i. */
  meanQueryAt?: number;
}

/** The keys one layer attends to (step/plan.ts LayerKeys, with the mask flattened). */
export interface AddonKeys {
  rows?: Int32Array;
  firstNew: number;
  positions: Int32Array;
  ranges?: Int32Array;
  rangesLo?: number;
  rangesHi?: number;
}

export interface AddonSequence {
  readonly length: number;
  /** A dense step: every layer attends to `keys`; resolves to the logits. */
  step(req: AddonStep, keys: AddonKeys): Promise<Float32Array>;
  /** Starts a step layer by layer; resolves to layer 0's q̄ (when meanQueryAt is set). */
  begin(req: AddonStep): Promise<Float32Array>;
  /** The k rows of [from, to) with the largest soft vote of the current layer's q̄, ascending. */
  vote(from: number, to: number, k: number): Promise<Int32Array>;
  /** The current layer attends to `keys`; resolves to the next layer's q̄, or the logits after the last. */
  attend(keys: AddonKeys): Promise<{ qbar: Float32Array } | { logits: Float32Array }>;
  /** Drops a step in progress. */
  abort(): void;
  retain(rows: Int32Array): void;
  kvBytes(): number;
  /** Per layer: keys (pre-RoPE) and values, [rows, Hkv·D] float32 row-major. */
  snapshot(): AddonRows;
  restore(s: AddonRows): void;
  dispose(): void;
}

/**
 * What gatherRotated writes: output row i is stored row rows[i] (rows a count n: row i of 0..n−1),
 * its key rotated by cos/sin row i ([·, rotaryDim/2] row-major) times scale (non-interleaved RoPE
 * over the first rotaryDim dims, the rest as stored), at unit length when asked; into outK/outV
 * (per KV head, [≥n, D]).
 */
export interface AddonGather {
  keys: ReadonlyArray<Uint16Array | Float32Array>;
  values: ReadonlyArray<Uint16Array | Float32Array>;
  D: number;
  rotaryDim: number;
  rows: Int32Array | number;
  cos: Float32Array;
  sin: Float32Array;
  scale: number;
  unitLength: boolean;
  outK: Float32Array[];
  outV: Float32Array[];
  threads: number;
}

/** A model's weights on a kernel set (native/src/device_model.h). */
export interface AddonModel {
  readonly kvBytesPerRow: number;
  info(): { name: string; computeType: string; kvType: string; totalMemoryBytes: number };
  memory(): { inUseBytes: number; peakBytes: number };
  resetPeak(): void;
  newSequence(): AddonSequence;
  timeMatmul(m: number, n: number, k: number, iters: number): number;
  dispose(): void;
}

/** One tensor of the model's table (model/tensors.ts): where its bytes are, and its shape. */
interface TensorSource {
  file: string;
  offset: number;
  dtype: string;
  shape: number[];
  /** A norm's weight (random weights are then drawn around 1). */
  norm: boolean;
}

/** "<role>.<key>" -> index into `tensors`, e.g. { "q.weight": 3, "q.bias": 4 }. */
type RoleMap = Record<string, number>;

export interface ModelSpec {
  device: 'cuda' | 'host';
  dtype: 'f32' | 'bf16';
  shape: { vocab: number; hidden: number; intermediate: number; layers: number; heads: number; kvHeads: number; headDim: number; eps: number };
  tensors: TensorSource[];
  model: RoleMap;
  layers: RoleMap[];
  randomSeed?: number;
}

export interface Addon {
  probe(): AddonProbe;
  loadModel(spec: ModelSpec): Promise<AddonModel>;
  /**
   * Drops this process's resident pages of every mapping of `path` (resolved) that holds nothing
   * written (native/src/process_memory.h); returns the bytes of the mappings advised. Absent from
   * addons built before it.
   */
  releaseFilePages?(path: string): number;
  /** malloc_trim(0): glibc's free heap memory back to the kernel. */
  trimHeap?(): boolean;
  /**
   * TokenSelect's soft vote over the cpu backend's KV store (native/src/select_kernels.h): the k rows
   * of [from, to) with the largest vote of q̄ [Hq·D] over `keys` (per KV head [≥to, D], f16 bits or
   * float32), ascending; on up to `threads` threads. Absent from addons built before it.
   */
  softVoteTopK?(qbar: Float32Array, keys: ReadonlyArray<Uint16Array | Float32Array>, D: number, from: number, to: number, k: number, threads: number): Int32Array;
  /** Rows of the KV store in float32, keys rotated (native/src/select_kernels.h). Absent from addons built before it. */
  gatherRotated?(a: AddonGather): void;
  /**
   * Causal attention of `rows` query rows (row i sees keys [0, offset + i]) over T keys, on the
   * calling thread and up to `threads` − 1 more (native/src/attention_rows.h): q and out
   * [rows, heads·headDim], keys and values per KV head [≥T, headDim], float32, rotated. For the cpu
   * backend's decoded rows. Absent from addons built before it.
   */
  attendCausal?(q: Float32Array, rows: number, heads: number, headDim: number, keys: Float32Array[], values: Float32Array[], T: number, offset: number, out: Float32Array, threads: number): void;
  abiVersion: number;
  /** Signal handlers swapped around a long call on the main thread (absent from addons built before them). */
  signals?: SignalCatcher;
}

/** The addon's path: CTX_NATIVE_ADDON, else native/build/Release/ctx_native.node (from src/ or dist/). */
export function addonPath(): string {
  return process.env.CTX_NATIVE_ADDON || fileURLToPath(new URL('../../../native/build/Release/ctx_native.node', import.meta.url));
}

let addon: Addon | null = null;
let loadError: string | null = null;

/** The addon, loaded once; null (and addonError() says why) when it is not built or does not load. */
export function loadAddon(): Addon | null {
  if (addon || loadError) return addon;
  const path = addonPath();
  if (!existsSync(path)) {
    loadError = 'the native addon is not built (run npm run build:native)';
    return null;
  }
  try {
    addon = createRequire(import.meta.url)(path) as Addon;
  } catch (e) {
    loadError = `the native addon does not load (${(e as Error).message.split('\n')[0]})`;
  }
  return addon;
}

/** Why the addon is not available. */
export function addonError(): string {
  return loadError ?? 'the native addon is not available';
}

/** Whether the native addon loaded (host kernels are then available), and why not. */
export function nativeAvailable(): { available: boolean; reason?: string } {
  return loadAddon() ? { available: true } : { available: false, reason: addonError() };
}

/** GPUs ctx can use, or the reason there is none (for `ctx inspect --devices` and the tests). */
export function probeDevices(): DeviceProbe {
  const a = loadAddon();
  if (!a) return { available: false, reason: addonError(), devices: [] };
  const p = a.probe();
  const devices = p.devices.map((d) => ({ name: d.name, memoryBytes: d.memoryBytes, computeCapability: d.computeCapability, driver: d.driver }));
  return p.available ? { available: true, devices } : { available: false, reason: p.reason, devices };
}

/**
 * Where the addon reads a tensor: a file, a byte offset and a float type. A GGUF tensor qualifies
 * when it is F32, F16 or BF16 and stored in Hugging Face row order (every qwen2 tensor; llama's q/k
 * rows are reordered in the file): the addon has no kernels for ggml's block types yet.
 */
function tensorLocation(model: Model, name: string): { file: string; offset: number; dtype: string } {
  const gguf = ggufWeights(model);
  if (!gguf) {
    const t = safetensorsWeights(model).info(name);
    return { file: t.file, offset: t.offset, dtype: t.dtype };
  }
  const t = gguf.info(name);
  if (!['F32', 'F16', 'BF16'].includes(t.dtype)) {
    throw new CtxError('model', `the cuda backend does not read GGUF ${t.dtype} tensors yet (${t.ggufName}); it reads F32, F16 and BF16 GGUF files. Use --backend cpu, which reads every GGUF type ctx supports`, { path: t.file });
  }
  if (t.rowOrder) {
    throw new CtxError('model', `the cuda backend cannot read ${t.ggufName}: llama.cpp stores llama q/k rows in its own order, which only the cpu and reference backends undo. Use --backend cpu`, { path: t.file });
  }
  return { file: t.file, offset: t.offset, dtype: t.dtype };
}

/**
 * The weight spec the addon loads: the model's tensor table as resolved in TypeScript — each
 * distinct tensor once (file, offset, dtype, shape) and, per level, which tensor plays each role.
 */
export function modelSpec(model: Model, device: 'cuda' | 'host', dtype: 'f32' | 'bf16', randomSeed?: number): ModelSpec {
  const c = model.config;
  // Host modules (CLEX's ODE) stay on the host: a step carries the frequencies they give.
  const onDevice = (mods: Modules): Modules => Object.fromEntries(Object.entries(mods).filter(([, m]) => m.kind !== 'host'));
  const tensors = { model: onDevice(model.tensors.model), layers: model.tensors.layers.map(onDevice) };
  const refs = distinctTensors(tensors);
  const index = new Map(refs.map((r, i) => [r.name, i]));
  const norms = new Set<string>();
  for (const mods of [tensors.model, ...tensors.layers]) {
    for (const m of Object.values(mods)) if (m.kind === 'norm') norms.add(m.tensors.weight.name);
  }
  const roles = (mods: Modules): RoleMap =>
    Object.fromEntries(Object.entries(mods).flatMap(([role, m]) => Object.entries(m.tensors).map(([key, t]) => [`${role}.${key}`, index.get(t.name)!])));
  return {
    device,
    dtype,
    shape: {
      vocab: c.vocabSize,
      hidden: c.hiddenSize,
      intermediate: c.intermediateSize,
      layers: c.numLayers,
      heads: c.numHeads,
      kvHeads: c.numKvHeads,
      headDim: c.headDim,
      eps: c.rmsNormEps,
    },
    tensors: refs.map((r) => ({ ...tensorLocation(model, r.name), shape: r.shape, norm: norms.has(r.name) })),
    model: roles(tensors.model),
    layers: tensors.layers.map(roles),
    randomSeed,
  };
}
