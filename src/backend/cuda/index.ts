// The `cuda` backend: ctx's native engine (native/) behind the backend contract.
//
// native/build/Release/beacon.node is an N-API addon that always builds. It holds the step
// orchestration in C++ (layer loop, KV storage, masks, TokenSelect selection, logits rows) and two
// kernel sets it can run it on:
//   - the CUDA kernels in beacon_cuda.so, opened at run time only when a GPU is present
//     (numeric "f32": float32 weights, for the goldens; "bf16": bf16 tensor-core GEMMs, the fast one);
//   - plain C++ loops on the host (`{ device: 'host' }`), which make the native path testable
//     without a GPU. CTX_CUDA_HOST=1 selects them for `--backend cuda` too (tests and goldens only).
//     With dtype "bf16" they emulate the GPU's bf16 roundings (to predict and check the bf16 path).
//
// probeDevices() says whether a GPU can be used, and if not, why.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { CtxError } from '../../errors.js';
import type { Model } from '../../model/model.js';
import { distinctTensors, type Modules } from '../../model/tensors.js';
import type { Backend, BackendOptions, Sequence, SequenceSnapshot, StepRequest, StepResult } from '../contract.js';

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

export interface CudaBackendOptions extends BackendOptions {
  /** "cuda" (default): the GPU kernels. "host": the same native engine on C++ CPU loops. */
  device?: 'cuda' | 'host';
  /** Benchmarks: fill the weights with seeded random values on the device instead of reading the files. */
  randomWeightsSeed?: number;
}

// ---- the addon ------------------------------------------------------------------------------------

interface NativeProbe {
  available: boolean;
  reason?: string;
  library: string | null;
  devices: Array<DeviceInfo & { freeMemoryBytes: number; multiprocessors: number; runtime: string }>;
}

interface NativeStep {
  tokens: Int32Array;
  beacon?: Uint8Array;
  positions?: Int32Array;
  ranges?: Int32Array;
  select?: { nInit: number; topK: number; nLocal: number; reuseCosine: number | null };
  logitRows: Int32Array;
  invFreq: Float32Array;
  ropeScale: number;
  reportSelection: boolean;
}

interface NativeSequence {
  readonly length: number;
  step(req: NativeStep): Promise<{ logits: Float32Array; selection?: Int32Array[] }>;
  retain(rows: Int32Array): void;
  kvBytes(): number;
  snapshot(): SequenceSnapshot;
  restore(s: SequenceSnapshot): void;
  dispose(): void;
}

interface NativeEngine {
  readonly kvBytesPerRow: number;
  info(): { name: string; computeType: string; kvType: string; totalMemoryBytes: number };
  memory(): { inUseBytes: number; peakBytes: number };
  resetPeak(): void;
  newSequence(): NativeSequence;
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

interface ModelSpec {
  device: 'cuda' | 'host';
  dtype: 'f32' | 'bf16';
  shape: { vocab: number; hidden: number; intermediate: number; layers: number; heads: number; kvHeads: number; headDim: number; eps: number };
  tensors: TensorSource[];
  model: RoleMap;
  layers: RoleMap[];
  randomSeed?: number;
}

interface Addon {
  probe(): NativeProbe;
  loadEngine(spec: ModelSpec): Promise<NativeEngine>;
  abiVersion: number;
}

/** The addon's path: CTX_NATIVE_ADDON, else native/build/Release/beacon.node (from src/ or dist/). */
export function addonPath(): string {
  return process.env.CTX_NATIVE_ADDON || fileURLToPath(new URL('../../../native/build/Release/beacon.node', import.meta.url));
}

let addon: Addon | null = null;
let addonError: string | null = null;

function loadAddon(): Addon | null {
  if (addon || addonError) return addon;
  const path = addonPath();
  if (!existsSync(path)) {
    addonError = 'the native addon is not built (run npm run build:native)';
    return null;
  }
  try {
    addon = createRequire(import.meta.url)(path) as Addon;
  } catch (e) {
    addonError = `the native addon does not load (${(e as Error).message.split('\n')[0]})`;
  }
  return addon;
}

/** Whether the native addon loaded (host kernels are then available), and why not. */
export function nativeAvailable(): { available: boolean; reason?: string } {
  return loadAddon() ? { available: true } : { available: false, reason: addonError ?? 'unknown' };
}

/** GPUs ctx can use, or the reason there is none (for `ctx inspect --devices` and the tests). */
export function probeDevices(): DeviceProbe {
  const a = loadAddon();
  if (!a) return { available: false, reason: addonError ?? 'the native addon is not available', devices: [] };
  const p = a.probe();
  const devices = p.devices.map((d) => ({ name: d.name, memoryBytes: d.memoryBytes, computeCapability: d.computeCapability, driver: d.driver }));
  return p.available ? { available: true, devices } : { available: false, reason: p.reason, devices };
}

// ---- the backend ----------------------------------------------------------------------------------

/**
 * The native engine's weight spec: the model's tensor table as resolved in TypeScript — each
 * distinct tensor once (file, offset, dtype, shape) and, per level, which tensor plays each role.
 */
function modelSpec(model: Model, device: 'cuda' | 'host', dtype: 'f32' | 'bf16', randomSeed?: number): ModelSpec {
  const c = model.config;
  const refs = distinctTensors(model.tensors);
  const index = new Map(refs.map((r, i) => [r.name, i]));
  const norms = new Set<string>();
  for (const mods of [model.tensors.model, ...model.tensors.layers]) {
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
    tensors: refs.map((r) => {
      const t = model.weights.info(r.name);
      return { file: t.file, offset: t.offset, dtype: t.dtype, shape: r.shape, norm: norms.has(r.name) };
    }),
    model: roles(model.tensors.model),
    layers: model.tensors.layers.map(roles),
    randomSeed,
  };
}

/** Native errors become CtxErrors where the user can act on them. */
function translate(e: unknown): unknown {
  const msg = (e as Error)?.message ?? String(e);
  if (/^out of (GPU )?memory/.test(msg)) return new CtxError('doesNotFit', msg, { cause: e });
  if (/^no GPU: /.test(msg)) return new CtxError('usage', msg, { cause: e });
  return e;
}

export class CudaBackend implements Backend {
  readonly name = 'cuda' as const;
  readonly numeric: string;
  readonly model: Model;
  readonly kvBytesPerRow: number;
  /** Where the kernels run, e.g. "NVIDIA H100 80GB HBM3 (sm_90, bf16)" or "host (C++ loops, f32)". */
  readonly deviceName: string;
  private readonly engine: NativeEngine;

  constructor(model: Model, engine: NativeEngine, numeric: string) {
    this.model = model;
    this.engine = engine;
    this.numeric = numeric;
    this.kvBytesPerRow = engine.kvBytesPerRow;
    this.deviceName = engine.info().name;
  }

  newSequence(): Sequence {
    return new CudaSequence(this.engine.newSequence(), this.kvBytesPerRow);
  }

  /** Device memory held by this backend's kernels (weights, KV, scratch), now and at its peak. */
  memory(): { inUseBytes: number; peakBytes: number } {
    return this.engine.memory();
  }

  resetPeakMemory(): void {
    this.engine.resetPeak();
  }

  /** Seconds per [m,k]·[n,k]ᵀ matrix product in the backend's numeric type (benchmarks). */
  timeMatmul(m: number, n: number, k: number, iters: number): number {
    return this.engine.timeMatmul(m, n, k, iters);
  }

  async dispose(): Promise<void> {
    this.engine.dispose();
  }
}

class CudaSequence implements Sequence {
  // Tracked here so reading the length never waits for a step running on the worker thread.
  private rows = 0;

  constructor(private readonly native: NativeSequence, private readonly bytesPerRow: number) {}

  get length(): number {
    return this.rows;
  }

  async step(req: StepRequest): Promise<StepResult> {
    const n = req.tokens.length;
    let res: { logits: Float32Array; selection?: Int32Array[] };
    try {
      res = await this.native.step({
        tokens: req.tokens,
        beacon: req.beacon,
        positions: req.select ? undefined : req.positions,
        ranges: !req.select && req.mask.kind === 'ranges' ? req.mask.ranges : undefined,
        select: req.select
          ? { nInit: req.select.nInit, topK: req.select.topK, nLocal: req.select.nLocal, reuseCosine: req.select.reuseCosine }
          : undefined,
        logitRows: req.logitRows,
        invFreq: req.rope.invFreq,
        ropeScale: req.rope.scale,
        reportSelection: Boolean(req.reportSelection),
      });
    } catch (e) {
      throw translate(e);
    }
    this.rows += n;
    return req.reportSelection ? { logits: res.logits, selection: res.selection } : { logits: res.logits };
  }

  retain(rows: Int32Array): void {
    this.native.retain(rows);
    this.rows = rows.length;
  }

  kvBytes(): number {
    return this.rows * this.bytesPerRow;
  }

  snapshot(): SequenceSnapshot {
    return this.native.snapshot();
  }

  restore(s: SequenceSnapshot): void {
    this.native.restore(s);
    this.rows = s.rows;
  }

  dispose(): void {
    this.native.dispose();
    this.rows = 0;
  }
}

/**
 * The native backend. On the GPU unless `device: 'host'` (or CTX_CUDA_HOST=1) asks for the C++ CPU
 * kernels; fails with "no GPU: <reason>" when a GPU is wanted and none can be used.
 * dtype: "f32" (default; matches the reference to ~1e-5) or "bf16" (GPU only; the fast path).
 */
export async function createCudaBackend(model: Model, opts: CudaBackendOptions = {}): Promise<Backend> {
  const device = opts.device ?? (process.env.CTX_CUDA_HOST === '1' ? 'host' : 'cuda');
  const dtype = opts.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'bf16') {
    throw new CtxError('usage', `the cuda backend runs dtype f32 or bf16, not "${dtype}"`);
  }
  const a = loadAddon();
  if (!a) throw new CtxError('usage', `no GPU: ${addonError}`);
  if (device === 'cuda') {
    const p = probeDevices();
    if (!p.available) throw new CtxError('usage', `no GPU: ${p.reason}`);
  }
  let engine: NativeEngine;
  try {
    engine = await a.loadEngine(modelSpec(model, device, dtype, opts.randomWeightsSeed));
  } catch (e) {
    const t = translate(e);
    if (t instanceof CtxError) throw t;
    throw new CtxError('model', (e as Error).message, { path: model.dir, cause: e });
  }
  return new CudaBackend(model, engine, dtype);
}
