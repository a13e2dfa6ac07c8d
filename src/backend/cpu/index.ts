// The cpu backend: the contract (../contract.ts) on ONNX Runtime's CPU execution provider, with
// graphs ctx builds itself (graphs.ts, attention.ts, select.ts) over weights converted once into
// the cache (weights.ts). It must give the reference backend's logits to float32 rounding.
//
// One step, n new rows over M stored rows (T = M + n):
//   x      = embedding rows (embedding.ts; beacon rows take the beacon embedding)
//   qkv_0  = first(x)                                             ORT
//   for each layer l:
//     store k, v of the new rows (pre-RoPE) at rows [M, T)        kv-store.ts
//     rotate q and the keys in play (rope.ts); for select, pick S (select.ts, vote in ORT)
//     attn  = attention over the keys, in query tiles             ORT (attention.ts)
//     x, qkv_{l+1} = layer_l(x, attn)                             ORT (o_proj, MLP, next qkv)
//   logits = head(x[logitRows])                                   ORT
// KV lives in JavaScript typed arrays owned by the sequence; ORT reads them in place.

import { availableParallelism } from 'node:os';
import { createHash } from 'node:crypto';
import { existsSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as ortTypes from 'onnxruntime-node';
import { CtxError } from '../../errors.js';
import type { Model } from '../../model/model.js';
import { ctxCacheDir } from '../../model/paths.js';
import type { Backend, BackendOptions, Sequence, SequenceSnapshot, StepRequest, StepResult } from '../contract.js';
import { visibleKeys } from '../contract.js';
import { cosine, selectedSet, selectionBounds } from '../select.js';
import { attend, buildAttentionGraph, type AttentionSessions, type TileMask } from './attention.js';
import { Embedding } from './embedding.js';
import { buildWeightGraphs, qkvWidth } from './graphs.js';
import { KvStore } from './kv-store.js';
import { RopeTables } from './rope.js';
import { buildVoteGraph, topBySoftVote } from './select.js';
import { convertedWeights, type WeightDType } from './weights.js';

export interface CpuBackendOptions extends BackendOptions {
  /** Hears about slow one-time work (weight conversion). */
  onProgress?: (message: string) => void;
}

type Ort = typeof ortTypes;

/**
 * Where a backend's step time goes, summed over every step since the last reset (milliseconds):
 * weight graphs (projections + MLP), attention graphs, the TokenSelect vote, the LM head, and
 * JavaScript glue (embedding reads, RoPE, KV copies, masks) = the rest.
 */
export class StepProfile {
  weights = 0;
  attention = 0;
  vote = 0;
  head = 0;
  total = 0;
  steps = 0;

  reset(): void {
    this.weights = this.attention = this.vote = this.head = this.total = this.steps = 0;
  }

  /** The breakdown as fractions of the total. */
  shares(): Record<string, number> {
    const t = this.total || 1;
    const glue = this.total - this.weights - this.attention - this.vote - this.head;
    return { weights: this.weights / t, attention: this.attention / t, vote: this.vote / t, head: this.head / t, glue: glue / t };
  }
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

export class CpuBackend implements Backend {
  readonly name = 'cpu' as const;
  readonly numeric: string;
  readonly model: Model;
  readonly kvBytesPerRow: number;
  readonly profile = new StepProfile();

  constructor(
    model: Model,
    dtype: WeightDType,
    readonly ort: Ort,
    readonly first: ortTypes.InferenceSession,
    readonly layers: ortTypes.InferenceSession[],
    readonly head: ortTypes.InferenceSession,
    readonly attention: AttentionSessions,
    readonly vote: ortTypes.InferenceSession,
    readonly embedding: Embedding,
  ) {
    const c = model.config;
    this.model = model;
    this.numeric = dtype;
    this.kvBytesPerRow = 2 * c.numLayers * c.numKvHeads * c.headDim * 4;
  }

  newSequence(): Sequence {
    return new CpuSequence(this);
  }

  async dispose(): Promise<void> {
    for (const s of [this.first, ...this.layers, this.head, this.attention.matmul, this.attention.fused, this.vote]) {
      await s.release();
    }
    this.embedding.close();
  }
}

export async function createCpuBackend(model: Model, opts: CpuBackendOptions = {}): Promise<Backend> {
  const dtype = (opts.dtype ?? 'f32') as WeightDType;
  if (dtype !== 'f32' && dtype !== 'q8' && dtype !== 'q4') throw new CtxError('usage', `the cpu backend runs --dtype f32, q8 or q4, not "${opts.dtype}"`);
  // ORT 1.30's Linux build ships Microsoft's telemetry SDK: unless disabled it writes a device id
  // under ~/.cache/Microsoft, /tmp/mat-debug-<pid>.log files, and tries HTTPS uploads. ctx is a
  // local tool; it never phones home.
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
  const mod = (await import('onnxruntime-node')) as Ort & { default?: Ort };
  const ort = mod.default ?? mod;
  const c = model.config;
  const { dir, layout } = convertedWeights(model, dtype, opts.cacheDir ?? ctxCacheDir(), opts.onProgress);
  // Weight sessions: no arena (each of the L + 2 would keep its peak activations for good).
  // Attention and vote sessions: an arena, whose peak is bounded by the score budget (attention.ts)
  // — without one, every call page-faults its fresh score tensors, and runs 3x slower (measured).
  const options = (prepack: boolean, arena = false): ortTypes.InferenceSession.SessionOptions => ({
    executionProviders: ['cpu'],
    intraOpNumThreads: opts.threads ?? availableParallelism(),
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
  });
  const open = (kind: string, bytes: Uint8Array, prepack = true, arena = false) =>
    ort.InferenceSession.create(graphFile(dir, kind, bytes), options(prepack, arena));
  const graphs = buildWeightGraphs(c, layout);
  const first = await open('first', graphs.first);
  const layers: ortTypes.InferenceSession[] = [];
  for (let l = 0; l < c.numLayers; l++) layers.push(await open(`layer${l}`, graphs.layers[l]));
  const head = await open('head', graphs.head, dtype !== 'f32');
  const attention: AttentionSessions = {
    matmul: await open('attention-matmul', buildAttentionGraph(c, 'matmul'), true, true),
    fused: await open('attention-fused', buildAttentionGraph(c, 'fused'), true, true),
  };
  const vote = await open('vote', buildVoteGraph(c), true, true);
  return new CpuBackend(model, dtype, ort, first, layers, head, attention, vote, new Embedding(model));
}

const i64 = (a: ArrayLike<number>) => BigInt64Array.from(Array.from(a, (v) => BigInt(v)));

/** Rows per call of a weight graph (projections, MLP): bounds a step's activations. */
export const ROW_CHUNK = 512;

/** Rows [r0, r1) of a step, with their beacon split inputs (beacon checkpoints). */
interface RowChunk {
  r0: number;
  r1: number;
  split: Record<string, ortTypes.Tensor>;
}

class CpuSequence implements Sequence {
  private readonly kv: KvStore;
  private readonly rope: RopeTables;
  /** Unit-scale table for TokenSelect's mean query (the reference rotates q̄ with scale 1). */
  private readonly ropeUnit: RopeTables;
  private selectCache: Array<{ qbar: Float32Array; top: Int32Array } | null>;
  /** Per-head scratch for the keys (rotated) and values a selection gathers. */
  private selK: Float32Array[] = [];
  private selV: Float32Array[] = [];
  /**
   * Step buffers reused from step to step (x, qkv, rotated q, attention output): a long step
   * would otherwise leave tens of MB of garbage per layer for the garbage collector to find late.
   */
  private readonly buffers = new Map<string, Float32Array>();

  private buffer(name: string, size: number): Float32Array {
    let b = this.buffers.get(name);
    if (!b || b.length < size) this.buffers.set(name, (b = new Float32Array(size)));
    return b.subarray(0, size);
  }

  constructor(private readonly b: CpuBackend) {
    const c = b.model.config;
    this.kv = new KvStore(c.numLayers, c.numKvHeads, c.headDim);
    this.rope = new RopeTables(c.headDim);
    this.ropeUnit = new RopeTables(c.headDim);
    this.selectCache = Array.from({ length: c.numLayers }, () => null);
  }

  get length(): number {
    return this.kv.rows;
  }

  kvBytes(): number {
    return this.kv.bytes();
  }

  async step(req: StepRequest): Promise<StepResult> {
    const b = this.b;
    const ort = b.ort;
    const c = b.model.config;
    const H = c.hiddenSize;
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    const W = qkvWidth(c);
    const n = req.tokens.length;
    const M = this.kv.rows;
    const T = M + n;
    if (n === 0) throw new Error('step: no rows');
    const prof = b.profile;
    const t0 = performance.now();
    let t = 0;
    for (const r of req.logitRows) if (r < 0 || r >= n) throw new Error(`step: logit row ${r} outside 0..${n - 1}`);

    // Embeddings; beacon rows take the beacon embedding.
    const x0 = this.buffer('x', n * H);
    const isBeacon = (i: number) => (req.beacon ? req.beacon[i] === 1 : false);
    for (let i = 0; i < n; i++) {
      if (isBeacon(i)) {
        if (!b.embedding.beacon) throw new Error('beacon row requested but the model has no beacon embedding');
        x0.set(b.embedding.beacon, i * H);
      } else {
        const id = req.tokens[i];
        if (id < 0 || id >= c.vocabSize) throw new Error(`token id ${id} outside the vocabulary (${c.vocabSize})`);
        b.embedding.row(id, x0, i * H);
      }
    }
    // The weight graphs run on row chunks of at most ROW_CHUNK rows (their activations stay
    // bounded however long a step is, e.g. a 2,304-row beacon window). Beacon checkpoints: each
    // chunk says which of its rows use the beacon projections (graphs.ts).
    const chunks: RowChunk[] = [];
    for (let r0 = 0; r0 < n; r0 += ROW_CHUNK) {
      const r1 = Math.min(n, r0 + ROW_CHUNK);
      const split: Record<string, ortTypes.Tensor> = {};
      if (c.beacon) {
        const raw: number[] = [];
        const bcn: number[] = [];
        for (let i = r0; i < r1; i++) (isBeacon(i) ? bcn : raw).push(i - r0);
        const order = new Int32Array(r1 - r0);
        raw.forEach((r, k) => (order[r] = k));
        bcn.forEach((r, k) => (order[r] = raw.length + k));
        split.rawIdx = new ort.Tensor('int64', i64(raw), [raw.length]);
        split.bcnIdx = new ort.Tensor('int64', i64(bcn), [bcn.length]);
        split.order = new ort.Tensor('int64', i64(order), [r1 - r0]);
      }
      chunks.push({ r0, r1, split });
    }

    // RoPE positions for this step: the largest any rotation below uses.
    const select = req.select ?? null;
    const bounds = select ? selectionBounds(T, n, select) : null;
    const dense = !select || bounds!.all;
    const positions = select ? Int32Array.from({ length: n }, (_, i) => M + i) : req.positions;
    let maxPos = T - 1;
    for (const p of positions) maxPos = Math.max(maxPos, p);
    if (select) maxPos = Math.max(maxPos, select.nLocal + n);
    if (this.rope.use(req.rope, maxPos)) this.kv.invalidateRotations();
    if (select && !dense) this.ropeUnit.use({ invFreq: req.rope.invFreq, scale: 1 }, maxPos);
    const indexPositions = positions.every((p, i) => p === M + i);

    // The attention mask, shared by every layer (dense steps).
    let mask: TileMask = { kind: 'causal', offset: M };
    if (!select && req.mask.kind === 'ranges') mask = { kind: 'bias', bias: this.rangesBias(req, M, n) };

    // x is updated in place, chunk by chunk (a chunk's rows are read before they are rewritten).
    const x = x0;
    const qkv = this.buffer('qkv', n * W);
    t = performance.now();
    await this.runRows(b.first, chunks, { x: [x, H] }, { qkv: [qkv, W] });
    prof.weights += performance.now() - t;
    const qrot = this.buffer('qrot', n * qDim);
    const attn = this.buffer('attn', n * qDim);
    const selection: Int32Array[] = [];
    for (let l = 0; l < c.numLayers; l++) {
      this.kv.append(l, M, n, qkv, W, qDim, qDim + kvDim);
      const L = this.kv.layers[l];
      if (dense) {
        // Keys: stored rows rotated at their index (cached), new rows at this step's positions.
        const kr = L.rotated();
        for (let g = 0; g < c.numKvHeads; g++) {
          for (let j = L.rotValid; j < M; j++) this.rope.rotate(L.k[g], j * c.headDim, kr[g], j * c.headDim, 1, j);
          for (let i = 0; i < n; i++) this.rope.rotate(L.k[g], (M + i) * c.headDim, kr[g], (M + i) * c.headDim, 1, positions[i]);
        }
        L.rotValid = indexPositions ? T : M;
        for (let i = 0; i < n; i++) this.rope.rotate(qkv, i * W, qrot, i * qDim, c.numHeads, positions[i]);
        if (select && req.reportSelection) selection.push(Int32Array.from({ length: T }, (_, j) => j));
        t = performance.now();
        await attend(ort, b.attention, c, { q: qrot, n, keys: kr, values: L.v, T, mask }, attn);
        prof.attention += performance.now() - t;
      } else {
        const S = await this.selectRows(l, req, qkv, M, n, bounds!.localStart);
        if (req.reportSelection) selection.push(S);
        const ns = S.length;
        const firstNew = ns - n; // the step's own rows are the tail of S
        this.gatherSelected(l, S);
        for (let i = 0; i < n; i++) this.rope.rotate(qkv, i * W, qrot, i * qDim, c.numHeads, firstNew + i);
        t = performance.now();
        await attend(ort, b.attention, c, { q: qrot, n, keys: this.selK, values: this.selV, T: ns, mask: { kind: 'causal', offset: firstNew } }, attn);
        prof.attention += performance.now() - t;
      }
      t = performance.now();
      const last = l + 1 === c.numLayers;
      await this.runRows(b.layers[l], chunks, { x: [x, H], attn: [attn, qDim] }, last ? { xout: [x, H] } : { xout: [x, H], qkv: [qkv, W] });
      prof.weights += performance.now() - t;
    }
    this.kv.rows = T;

    const nl = req.logitRows.length;
    let logits: Float32Array = new Float32Array(0);
    if (nl > 0) {
      const picked = new Float32Array(nl * H);
      req.logitRows.forEach((r, k) => picked.set(x.subarray(r * H, (r + 1) * H), k * H));
      t = performance.now();
      logits = (await b.head.run({ x: new ort.Tensor('float32', picked, [nl, H]) })).logits.data as Float32Array;
      prof.head += performance.now() - t;
    }
    prof.total += performance.now() - t0;
    prof.steps++;
    return { logits, selection: req.reportSelection ? selection : undefined };
  }

  /**
   * Runs a weight graph on each row chunk: inputs and outputs are [rows, width] arrays, cut by
   * chunk. An output may be an input's array: chunk [r0, r1) is written after its run.
   */
  private async runRows(
    session: ortTypes.InferenceSession,
    chunks: RowChunk[],
    inputs: Record<string, [Float32Array, number]>,
    outputs: Record<string, [Float32Array, number]>,
  ): Promise<void> {
    const ort = this.b.ort;
    for (const { r0, r1, split } of chunks) {
      const feeds: Record<string, ortTypes.Tensor> = { ...split };
      for (const [name, [data, width]] of Object.entries(inputs)) feeds[name] = new ort.Tensor('float32', data.subarray(r0 * width, r1 * width), [r1 - r0, width]);
      const out = await session.run(feeds, Object.keys(outputs));
      for (const [name, [data, width]] of Object.entries(outputs)) data.set(out[name].data as Float32Array, r0 * width);
    }
  }

  /** The additive [q1 − q0, T] masks of a `ranges` step, built once and shared by every layer. */
  private rangesBias(req: StepRequest, M: number, n: number): (q0: number, q1: number, T: number) => Float32Array {
    const made = new Map<string, Float32Array>();
    const ranges: Array<[number, number]> = [];
    return (q0, q1, T) => {
      const key = `${q0}:${q1}:${T}`;
      let bias = made.get(key);
      if (!bias) {
        bias = new Float32Array((q1 - q0) * T).fill(-Infinity);
        for (let i = q0; i < q1; i++) {
          const nr = visibleKeys(req.mask, M, i, ranges);
          for (let r = 0; r < nr; r++) bias.fill(0, (i - q0) * T + ranges[r][0], (i - q0) * T + Math.min(ranges[r][1], T));
        }
        made.set(key, bias);
      }
      return bias;
    };
  }

  /** TokenSelect's selected rows S for layer l (contract.ts, SelectSpec). */
  private async selectRows(l: number, req: StepRequest, qkv: Float32Array, M: number, n: number, localStart: number): Promise<Int32Array> {
    const c = this.b.model.config;
    const spec = req.select!;
    const T = M + n;
    const D = c.headDim;
    const qDim = c.numHeads * D;
    const W = qkvWidth(c);
    // q̄ = mean_i RoPE(q_i, nLocal + i), accumulated in float32 like the reference.
    const qbar = new Float32Array(qDim);
    const qi = new Float32Array(qDim);
    for (let i = 0; i < n; i++) {
      this.ropeUnit.rotate(qkv, i * W, qi, 0, c.numHeads, spec.nLocal + i);
      for (let d = 0; d < qDim; d++) qbar[d] += qi[d] / n;
    }
    const cached = this.selectCache[l];
    let top: Int32Array;
    if (spec.reuseCosine !== null && cached && cosine(qbar, cached.qbar) >= spec.reuseCosine) {
      top = cached.top.filter((j) => j >= spec.nInit && j < localStart);
    } else {
      const L = this.kv.layers[l];
      const t = performance.now();
      const rel = await topBySoftVote(this.b.ort, this.b.vote, c, qbar, L.k, spec.nInit, localStart - spec.nInit, spec.topK);
      this.b.profile.vote += performance.now() - t;
      top = rel.map((j) => j + spec.nInit);
      this.selectCache[l] = { qbar, top };
    }
    // Selection steps never use the rotated-key cache (positions are ranks): free it.
    this.kv.layers[l].kr = null;
    this.kv.layers[l].rotValid = 0;
    return selectedSet(spec.nInit, top, localStart, T);
  }

  /** Copies the keys (rotated at their rank in S) and values of S into the selection scratch. */
  private gatherSelected(l: number, S: Int32Array): void {
    const c = this.b.model.config;
    const D = c.headDim;
    const L = this.kv.layers[l];
    if (this.selK.length === 0 || this.selK[0].length < S.length * D) {
      const cap = Math.ceil(S.length * 1.25) * D;
      this.selK = Array.from({ length: c.numKvHeads }, () => new Float32Array(cap));
      this.selV = Array.from({ length: c.numKvHeads }, () => new Float32Array(cap));
    }
    for (let g = 0; g < c.numKvHeads; g++) {
      for (let r = 0; r < S.length; r++) {
        this.rope.rotate(L.k[g], S[r] * D, this.selK[g], r * D, 1, r);
        this.selV[g].set(L.v[g].subarray(S[r] * D, (S[r] + 1) * D), r * D);
      }
    }
  }

  retain(rows: Int32Array): void {
    for (const r of rows) if (r < 0 || r >= this.kv.rows) throw new Error(`retain: row ${r} outside 0..${this.kv.rows - 1}`);
    this.kv.retain(rows);
    // Cached selections index rows that may have moved; a strategy that retains never reuses them.
    this.selectCache = this.selectCache.map(() => null);
  }

  snapshot(): SequenceSnapshot {
    return {
      ...this.kv.snapshot(),
      selectCache: this.selectCache.map((e) => (e ? { qbar: e.qbar.slice(), top: e.top.slice() } : null)),
    };
  }

  restore(s: SequenceSnapshot): void {
    const c = this.b.model.config;
    if (s.keys.length !== c.numLayers) throw new Error(`snapshot has ${s.keys.length} layers, model has ${c.numLayers}`);
    this.kv.restore(s);
    this.selectCache = s.selectCache.map((e) => (e ? { qbar: e.qbar.slice(), top: e.top.slice() } : null));
  }

  dispose(): void {
    this.kv.release();
    this.selK = [];
    this.selV = [];
    this.buffers.clear();
  }
}
