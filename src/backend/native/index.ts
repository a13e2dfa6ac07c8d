// The native backend: ctx's C++ code in native/ (the addon, addon.ts) behind the backend contract.
// It runs on one of two kernel sets:
//   - the CUDA kernels (device "cuda"): `--backend cuda`, numeric "f32" (float32 weights, for the
//     goldens) or "bf16" (bf16 tensor-core GEMMs, the fast one);
//   - plain C++ loops on the host (device "host"), which make the native backend testable without
//     a GPU. CTX_CUDA_HOST=1 selects them for `--backend cuda` too (tests and goldens only). With
//     dtype "bf16" they emulate the GPU's bf16 roundings (to predict and check the bf16 path).
// Either way the backend is named `cuda` (its name in cache keys and events): the host kernels stand
// in for the GPU ones, they are not another backend.
//
// What a step computes is decided here in TypeScript, as for every backend (../step/): the request
// is checked and planned once; a dense step is one addon call, and a TokenSelect step runs layer by
// layer — the addon computes each layer's q̄ and, when the selection is not reused, the vote; the
// selector picks S; the addon attends over it.

import { CtxError } from '../../errors.js';
import type { Model } from '../../model/model.js';
import { describeSoftplus } from '../../model/softplus-config.js';
import type { Backend, BackendOptions, Sequence, SequenceSnapshot, StepRequest, StepResult } from '../contract.js';
import { allRows, checkRetain, planStep, selectedKeys, type LayerKeys } from '../step/plan.js';
import { checkSnapshot, layerAsFloat32, snapshotFromLayers } from '../step/snapshot.js';
import { TokenSelector } from '../step/select.js';
import { addonError, loadAddon, modelSpec, probeDevices, type AddonKeys, type AddonModel, type AddonSequence, type AddonStep } from './addon.js';

export { nativeAvailable, probeDevices, type DeviceInfo, type DeviceProbe } from './addon.js';

export interface NativeBackendOptions extends BackendOptions {
  /** "cuda" (default): the GPU kernels. "host": the same backend on C++ CPU loops. */
  device?: 'cuda' | 'host';
  /** Benchmarks: fill the weights with seeded random values on the device instead of reading the files. */
  randomWeightsSeed?: number;
}

/** Addon errors become CtxErrors where the user can act on them. */
function translate(e: unknown): unknown {
  const msg = (e as Error)?.message ?? String(e);
  if (/^out of (GPU )?memory/.test(msg)) return new CtxError('doesNotFit', msg, { cause: e });
  if (/^no GPU: /.test(msg)) return new CtxError('usage', msg, { cause: e });
  return e;
}

/** What the native backend says to a FocusLLM run: it has neither candidate rows nor importRows yet. */
const FOCUS_UNSUPPORTED =
  'the cuda backend does not run the focus strategy (FocusLLM) yet: it has no rows with beacon projections on their token embedding and no importRows; use --backend cpu';

const sameFlags = (a: Uint8Array, b: Uint8Array | null) => b !== null && a.every((f, i) => (f === 1) === (b[i] === 1));

const addonKeys = (k: LayerKeys): AddonKeys => ({
  rows: k.rows ?? undefined,
  firstNew: k.firstNew,
  positions: k.positions,
  ...(k.mask.kind === 'ranges' ? { ranges: k.mask.ranges, rangesLo: k.mask.lo, rangesHi: k.mask.hi } : {}),
});

export class NativeBackend implements Backend {
  readonly name = 'cuda' as const;
  readonly numeric: string;
  readonly model: Model;
  readonly kvBytesPerRow: number;
  /** Where the kernels run, e.g. "NVIDIA H100 80GB HBM3 (sm_90, bf16)" or "host (C++ loops, f32)". */
  readonly deviceName: string;

  constructor(model: Model, private readonly loaded: AddonModel, numeric: string) {
    this.model = model;
    this.numeric = numeric;
    this.kvBytesPerRow = loaded.kvBytesPerRow;
    this.deviceName = loaded.info().name;
  }

  newSequence(): Sequence {
    return new NativeSequence(this.model, this.loaded.newSequence(), this.kvBytesPerRow);
  }

  /** Device memory held by this backend's kernels (weights, KV, scratch), now and at its peak. */
  memory(): { inUseBytes: number; peakBytes: number } {
    return this.loaded.memory();
  }

  resetPeakMemory(): void {
    this.loaded.resetPeak();
  }

  /** Seconds per [m,k]·[n,k]ᵀ matrix product in the backend's numeric type (benchmarks). */
  timeMatmul(m: number, n: number, k: number, iters: number): number {
    return this.loaded.timeMatmul(m, n, k, iters);
  }

  async dispose(): Promise<void> {
    this.loaded.dispose();
  }
}

class NativeSequence implements Sequence {
  // Tracked here so reading the length never waits for a step running on the worker thread.
  private rows = 0;
  private readonly selector: TokenSelector;

  constructor(private readonly model: Model, private readonly native: AddonSequence, private readonly bytesPerRow: number) {
    this.selector = new TokenSelector(model.config.numLayers);
  }

  get length(): number {
    return this.rows;
  }

  async step(req: StepRequest): Promise<StepResult> {
    const plan = planStep(req, this.rows, this.model);
    // The addon's rows take the beacon embedding exactly where they take the beacon projections.
    if (plan.beacon && !sameFlags(plan.beacon, plan.beaconEmbedding)) throw new CtxError('usage', FOCUS_UNSUPPORTED);
    const input: AddonStep = {
      tokens: req.tokens,
      beacon: plan.beacon ?? undefined,
      logitRows: req.logitRows,
      invFreq: req.rope.invFreq,
      ropeScale: req.rope.scale,
      queryScale: req.rope.queryScale ?? 1,
    };
    const selection: Int32Array[] = [];
    let logits: Float32Array;
    try {
      if (plan.keys) {
        logits = await this.native.step(input, addonKeys(plan.keys));
        if (plan.selectsAll && req.reportSelection) for (let l = 0; l < this.model.config.numLayers; l++) selection.push(allRows(plan.T));
      } else {
        logits = await this.stepLayerByLayer(input, plan.select!, plan.n, plan.T, selection);
      }
    } catch (e) {
      throw translate(e);
    }
    this.rows = plan.T;
    return req.reportSelection ? { logits, selection } : { logits };
  }

  /** A TokenSelect step: per layer, q̄ from the addon, S from the selector (the vote from the addon), attention in the addon. */
  private async stepLayerByLayer(
    input: AddonStep,
    select: { spec: NonNullable<StepRequest['select']>; localStart: number },
    n: number,
    T: number,
    selection: Int32Array[],
  ): Promise<Float32Array> {
    const { spec, localStart } = select;
    let qbar = await this.native.begin({ ...input, meanQueryAt: spec.nLocal });
    try {
      for (let l = 0; ; l++) {
        const S = await this.selector.select(l, qbar, spec, localStart, T, (from, to, k) => this.native.vote(from, to, k));
        selection.push(S);
        const r = await this.native.attend(addonKeys(selectedKeys(S, n)));
        if ('logits' in r) return r.logits;
        qbar = r.qbar;
      }
    } catch (e) {
      this.native.abort();
      throw e;
    }
  }

  importRows(_source: Sequence, _rows: Int32Array): void {
    throw new CtxError('usage', FOCUS_UNSUPPORTED);
  }

  retain(rows: Int32Array): void {
    checkRetain(rows, this.rows);
    this.native.retain(rows);
    this.rows = rows.length;
    this.selector.reset();
  }

  kvBytes(): number {
    return this.rows * this.bytesPerRow;
  }

  snapshot(): SequenceSnapshot {
    const c = this.model.config;
    const s = this.native.snapshot();
    return snapshotFromLayers(s.rows, s.keys, s.values, c.numKvHeads, c.headDim, this.selector.snapshot());
  }

  restore(s: SequenceSnapshot): void {
    checkSnapshot(s, this.model);
    const D = this.model.config.headDim;
    const layers = (heads: SequenceSnapshot['keys']) => heads.map((h) => layerAsFloat32(h, s.rows, D));
    this.native.restore({ rows: s.rows, keys: layers(s.keys), values: layers(s.values) });
    this.rows = s.rows;
    this.selector.restore(s.selectCache);
  }

  dispose(): void {
    this.native.dispose();
    this.rows = 0;
  }
}

/**
 * The native backend. On the GPU unless `device: 'host'` (or CTX_CUDA_HOST=1) asks for the C++ CPU
 * kernels; fails with "no GPU: <reason>" when a GPU is wanted and none can be used, and refuses
 * softplus-attention models (exit 2, naming the model folder).
 * dtype: "f32" (default; matches the reference to ~1e-5) or "bf16" (GPU only; the fast path).
 */
export async function createNativeBackend(model: Model, opts: NativeBackendOptions = {}): Promise<Backend> {
  const device = opts.device ?? (process.env.CTX_CUDA_HOST === '1' ? 'host' : 'cuda');
  const dtype = opts.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'bf16') {
    throw new CtxError('usage', `the cuda backend runs dtype f32 or bf16, not "${dtype}"`);
  }
  const c = model.config;
  if (c.block.norm !== 'rms' || c.block.mlp !== 'swiglu' || c.block.parallel || c.rotaryDim !== c.headDim) {
    throw new CtxError(
      'usage',
      `the cuda backend runs Llama-style blocks (RMSNorm, SwiGLU MLP, RoPE over whole heads); this ${c.arch} model ` +
        '(LayerNorm, GELU MLP, parallel attention and MLP, partial rotary) runs on --backend cpu or --backend reference',
      { path: model.dir },
    );
  }
  if (c.softplus) {
    // The native kernels compute softmax attention only; softplus models run on cpu and reference.
    throw new CtxError('usage', `${describeSoftplus(c.softplus)} is not supported by the cuda backend (its kernels compute softmax attention only); use --backend cpu`, { path: model.dir });
  }
  const a = loadAddon();
  if (!a) throw new CtxError('usage', `no GPU: ${addonError()}`);
  if (device === 'cuda') {
    const p = probeDevices();
    if (!p.available) throw new CtxError('usage', `no GPU: ${p.reason}`);
  }
  let loaded: AddonModel;
  try {
    loaded = await a.loadModel(modelSpec(model, device, dtype, opts.randomWeightsSeed));
  } catch (e) {
    const t = translate(e);
    if (t instanceof CtxError) throw t;
    throw new CtxError('model', (e as Error).message, { path: model.dir, cause: e });
  }
  return new NativeBackend(model, loaded, dtype);
}
