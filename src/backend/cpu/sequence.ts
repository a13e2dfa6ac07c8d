// A cpu backend sequence: its KV rows (kv-store.ts) and the step, computed with ONNX Runtime.
// Which keys each row sees and at which positions is the step plan's (../step/plan.ts), TokenSelect's
// choice the selector's (../step/select.ts); this file says how it is computed here.
//
// One step, n new rows over M stored rows (T = M + n):
//   x      = embedding rows (embedding.ts; beacon rows take the beacon embedding)
//   qkv_0  = first(x)                                             ORT
//   for each layer l:
//     store k, v of the new rows (pre-RoPE) at rows [M, T)        kv-store.ts
//     keys: dense — stored rows rotated at their index, new rows at the plan's positions: with
//           f16 KV cast to float32 and rotated every step (keys.ts), with f32 KV rotated in
//           JavaScript and cached (kv-store.ts kr);
//           select — q̄ in JavaScript, the vote (vote.ts), the selected rows gathered and
//           rotated (keys.ts); vote and keys in the native addon's loops when it has them
//           (native-loops.ts), else in ORT;
//           softplus models keep rotated keys at unit length (attention-softplus.ts)
//     attn  = attention over the keys, in query tiles             ORT; a decoded row native (attention.ts)
//     x, qkv_{l+1} = layer_l(x, attn)                             ORT (o_proj, MLP, next qkv)
//   logits = head(x[logitRows])                                   ORT
// KV lives in JavaScript typed arrays owned by the sequence, in the KV dtype (f16 or f32); ORT
// reads them in place and writes its outputs straight into the step's buffers.

import type * as ortTypes from 'onnxruntime-node';
import { beaconParams } from '../../model/tensors.js';
import { toUnitLength } from '../attention-softplus.js';
import type { Sequence, SequenceSnapshot, StepRequest, StepResult } from '../contract.js';
import { allRows, checkRetain, planStep, selectedKeys, visibleRanges, type LayerKeys, type StepPlan } from '../step/plan.js';
import { checkSnapshot } from '../step/snapshot.js';
import { RopeTables } from '../step/rope.js';
import { meanRotatedQuery, TokenSelector } from '../step/select.js';
import { attend, type TileMask } from './attention.js';
import { qkvWidth } from './graphs.js';
import type { CpuBackend } from './index.js';
import { gatherSelected, widen } from './keys.js';
import { KvStore, type KvArray } from './kv-store.js';
import { topBySoftVote } from './vote.js';

const i64 = (a: ArrayLike<number>) => BigInt64Array.from(Array.from(a, (v) => BigInt(v)));

/**
 * Rows per call of a weight graph (projections, MLP): bounds a step's activations. Their memory
 * comes from malloc, which keeps what was freed, so the peak follows this: 2K-token q8 prefill of
 * the Qwen2.5-0.5B shape peaked at 1,270–1,390 MiB with 512 rows, ~1,010 with 128 (f32 KV); 128 is
 * as fast per token (measured in CPU time) and 64 saved little more.
 */
export const ROW_CHUNK = 128;

/** Rows [r0, r1) of a step, with their beacon split inputs (beacon checkpoints). */
interface RowChunk {
  r0: number;
  r1: number;
  split: Record<string, ortTypes.Tensor>;
}

export class CpuSequence implements Sequence {
  private readonly kv: KvStore;
  private readonly rope: RopeTables;
  private readonly selector: TokenSelector;
  /** Per-head float32 scratch for the keys (rotated) and values of one layer's attention (keys.ts). */
  private attnK: Float32Array[] = [];
  private attnV: Float32Array[] = [];
  /** cos/sin rows of a dense step whose new rows are not at their index ([T, R/2]; denseTables). */
  private readonly tables = { cos: new Float32Array(0), sin: new Float32Array(0) };
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
    this.kv = new KvStore(b.kvDtype, c.numLayers, c.numKvHeads, c.headDim);
    this.rope = new RopeTables(c.headDim, c.rotaryDim);
    this.selector = new TokenSelector(c.numLayers);
  }

  get length(): number {
    return this.kv.rows;
  }

  kvBytes(): number {
    return this.kv.bytes();
  }

  async step(req: StepRequest): Promise<StepResult> {
    const b = this.b;
    const c = b.model.config;
    const plan = planStep(req, this.kv.rows, b.model);
    const { n, M, T } = plan;
    const H = c.hiddenSize;
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    const W = qkvWidth(c);
    const prof = b.profile;
    const t0 = performance.now();
    let t = 0;

    // Embeddings; beacon-embedding rows take the beacon embedding.
    const x = this.buffer('x', n * H);
    for (let i = 0; i < n; i++) {
      if (plan.beaconEmbedding?.[i] === 1) x.set(b.embedding.beacon!, i * H);
      else b.embedding.row(req.tokens[i], x, i * H);
    }
    const chunks = this.rowChunks(plan);
    if (this.rope.use(req.rope, plan.maxPosition)) this.kv.invalidateRotations();
    // The attention mask of a dense step, shared by every layer.
    const denseMask: TileMask | null = plan.keys ? this.tileMask(plan.keys) : null;

    // x is updated in place, chunk by chunk (a chunk's rows are read before they are rewritten).
    const qkv = this.buffer('qkv', n * W);
    t = performance.now();
    await this.runRows(b.sessions.first, chunks, { x: [x, H] }, { qkv: [qkv, W] });
    prof.weights += performance.now() - t;
    this.kv.prepare(T);
    const qrot = this.buffer('qrot', n * qDim);
    const attn = this.buffer('attn', n * qDim);
    const selection: Int32Array[] = [];
    for (let l = 0; l < c.numLayers; l++) {
      this.kv.append(l, M, n, qkv, W, qDim, qDim + kvDim);
      let keys: LayerKeys;
      let mask: TileMask;
      let keyHeads: Float32Array[];
      let valueHeads: Float32Array[];
      if (plan.keys) {
        keys = plan.keys;
        mask = denseMask!;
        [keyHeads, valueHeads] = await this.denseKeys(l, keys);
      } else {
        keys = await this.selectKeys(l, plan, qkv);
        mask = { kind: 'causal', offset: keys.firstNew };
        [keyHeads, valueHeads] = await this.gatherSelected(l, keys, T);
      }
      if (req.reportSelection && (plan.select || plan.selectsAll)) selection.push(keys.rows ?? allRows(T));
      for (let i = 0; i < n; i++) this.rope.rotate(qkv, i * W, qrot, i * qDim, c.numHeads, keys.positions[i]);
      // CLEX's log_scale multiplies the rotated queries only (contract.ts RopeTable.queryScale).
      const qs = req.rope.queryScale ?? 1;
      if (qs !== 1) for (let j = 0; j < n * qDim; j++) qrot[j] *= qs;
      t = performance.now();
      await attend(b.ort, b.sessions.attention, c, { q: qrot, n, keys: keyHeads, values: valueHeads, T: keys.count, mask, native: b.native }, attn);
      prof.attention += performance.now() - t;
      t = performance.now();
      const last = l + 1 === c.numLayers;
      await this.runRows(b.sessions.layers[l], chunks, { x: [x, H], attn: [attn, qDim] }, last ? { xout: [x, H] } : { xout: [x, H], qkv: [qkv, W] });
      prof.weights += performance.now() - t;
    }
    this.kv.rows = T;

    const nl = req.logitRows.length;
    let logits: Float32Array = new Float32Array(0);
    if (nl > 0) {
      const picked = new Float32Array(nl * H);
      req.logitRows.forEach((r, k) => picked.set(x.subarray(r * H, (r + 1) * H), k * H));
      t = performance.now();
      logits = (await b.sessions.head.run({ x: new b.ort.Tensor('float32', picked, [nl, H]) })).logits.data as Float32Array;
      prof.head += performance.now() - t;
    }
    prof.total += performance.now() - t0;
    prof.steps++;
    return { logits, selection: req.reportSelection ? selection : undefined };
  }

  /**
   * The step's rows in chunks of at most ROW_CHUNK for the weight graphs (their activations stay
   * bounded however long a step is, e.g. a 2,304-row beacon window). Checkpoints with beacon
   * projections (Activation Beacon, FocusLLM): each chunk says which of its rows use them (graphs.ts).
   */
  private rowChunks(plan: StepPlan): RowChunk[] {
    const ort = this.b.ort;
    const chunks: RowChunk[] = [];
    for (let r0 = 0; r0 < plan.n; r0 += ROW_CHUNK) {
      const r1 = Math.min(plan.n, r0 + ROW_CHUNK);
      const split: Record<string, ortTypes.Tensor> = {};
      if (beaconParams(this.b.model.config)) {
        const raw: number[] = [];
        const bcn: number[] = [];
        for (let i = r0; i < r1; i++) (plan.beacon?.[i] === 1 ? bcn : raw).push(i - r0);
        const order = new Int32Array(r1 - r0);
        raw.forEach((r, k) => (order[r] = k));
        bcn.forEach((r, k) => (order[r] = raw.length + k));
        split.rawIdx = new ort.Tensor('int64', i64(raw), [raw.length]);
        split.bcnIdx = new ort.Tensor('int64', i64(bcn), [bcn.length]);
        split.order = new ort.Tensor('int64', i64(order), [r1 - r0]);
      }
      chunks.push({ r0, r1, split });
    }
    return chunks;
  }

  /**
   * Runs a weight graph on each row chunk: inputs and outputs are [rows, width] arrays, cut by
   * chunk. ONNX Runtime writes each output straight into its array (pre-allocated outputs: no
   * result buffer per call for the garbage collector to find late). An output may be an input's
   * array (x → xout): the graph reads x only in its first node, long before it writes xout.
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
      const fetches: Record<string, ortTypes.Tensor> = {};
      for (const [name, [data, width]] of Object.entries(outputs)) fetches[name] = new ort.Tensor('float32', data.subarray(r0 * width, r1 * width), [r1 - r0, width]);
      await session.run(feeds, fetches);
    }
  }

  /** A dense step's mask for the attention tiles: causal from firstNew, or the `ranges` as additive [q1 − q0, T] biases. */
  private tileMask(keys: LayerKeys): TileMask {
    if (keys.mask.kind === 'causal') return { kind: 'causal', offset: keys.firstNew };
    const made = new Map<string, Float32Array>();
    const ranges: Array<[number, number]> = [];
    const bias = (q0: number, q1: number, T: number) => {
      const key = `${q0}:${q1}:${T}`;
      let b = made.get(key);
      if (!b) {
        b = new Float32Array((q1 - q0) * T).fill(-Infinity);
        for (let i = q0; i < q1; i++) {
          const nr = visibleRanges(keys, i, ranges);
          for (let r = 0; r < nr; r++) b.fill(0, (i - q0) * T + ranges[r][0], (i - q0) * T + Math.min(ranges[r][1], T));
        }
        made.set(key, b);
      }
      return b;
    };
    return { kind: 'bias', bias };
  }

  /** Per-head float32 scratch of at least `rows` rows for one layer's keys and values (grown by a quarter more). */
  private attentionScratch(rows: number): [Float32Array[], Float32Array[]] {
    const c = this.b.model.config;
    const D = c.headDim;
    if (this.attnK.length === 0 || this.attnK[0].length < rows * D) {
      const cap = Math.ceil(rows * 1.25) * D;
      this.attnK = Array.from({ length: c.numKvHeads }, () => new Float32Array(cap));
      this.attnV = Array.from({ length: c.numKvHeads }, () => new Float32Array(cap));
    }
    return [this.attnK, this.attnV];
  }

  /**
   * A dense step's keys and values for layer l, per KV head, in float32. f32 KV: the rotated keys
   * (rotatedKeys) and the store's own values. f16 KV: both cast (keys.ts), the keys rotated there too
   * (row j of the stored rows at position j, new rows at the plan's positions).
   */
  private async denseKeys(l: number, keys: LayerKeys): Promise<[Float32Array[], Float32Array[]]> {
    const b = this.b;
    const L = this.kv.layers[l];
    if (b.kvDtype === 'f32') return [this.rotatedKeys(l, keys) as Float32Array[], L.v as Float32Array[]];
    const [k32, v32] = this.attentionScratch(keys.count);
    const { cos, sin } = this.denseTables(keys);
    const t = performance.now();
    await widen(b.ort, b.sessions.widen!, b.model.config, { keys: L.k, values: L.v, T: keys.count, cos, sin, scale: this.rope.scale }, k32, v32, b.native);
    b.profile.keys += performance.now() - t;
    return [k32, v32];
  }

  /**
   * The cos/sin rows of a dense step's T keys: row j at position j for the stored rows (j < M),
   * at the plan's positions for the new ones. The table itself when those are their indices too.
   */
  private denseTables(keys: LayerKeys): { cos: Float32Array; sin: Float32Array } {
    const M = keys.firstNew;
    const T = keys.count;
    const rope = this.rope;
    if (keys.positions.every((p, i) => p === M + i)) return { cos: rope.cos, sin: rope.sin };
    const h = rope.half;
    if (this.tables.cos.length < T * h) {
      this.tables.cos = new Float32Array(Math.ceil(T * 1.25) * h);
      this.tables.sin = new Float32Array(Math.ceil(T * 1.25) * h);
    }
    const { cos, sin } = this.tables;
    cos.set(rope.cos.subarray(0, M * h));
    sin.set(rope.sin.subarray(0, M * h));
    keys.positions.forEach((p, i) => {
      cos.set(rope.cos.subarray(p * h, (p + 1) * h), (M + i) * h);
      sin.set(rope.sin.subarray(p * h, (p + 1) * h), (M + i) * h);
    });
    return { cos, sin };
  }

  /**
   * A dense step's keys for layer l with f32 KV, per KV head: stored rows rotated at their index
   * (cached across steps while the RoPE table stays), the new rows at the plan's positions.
   */
  private rotatedKeys(l: number, keys: LayerKeys): Float32Array[] {
    const D = this.b.model.config.headDim;
    const L = this.kv.layers[l];
    const M = keys.firstNew;
    const n = keys.count - M;
    const k = L.k as Float32Array[];
    const kr = L.rotated() as Float32Array[];
    for (let g = 0; g < k.length; g++) {
      for (let j = L.rotValid; j < M; j++) this.rotateKey(k[g], j * D, kr[g], j * D, j);
      for (let i = 0; i < n; i++) this.rotateKey(k[g], (M + i) * D, kr[g], (M + i) * D, keys.positions[i]);
    }
    // New rows at their index stay valid for the next step; elsewhere they are re-rotated.
    L.rotValid = keys.positions.every((p, i) => p === M + i) ? keys.count : M;
    return kr;
  }

  /**
   * One stored key head (D values) rotated to `pos`, from src into dst; softplus models also scale
   * it to unit length, as their attention graph (attention-softplus.ts) expects.
   */
  private rotateKey(src: Float32Array, so: number, dst: Float32Array, dOff: number, pos: number): void {
    this.rope.rotate(src, so, dst, dOff, 1, pos);
    if (this.b.model.config.softplus) toUnitLength(dst, dOff, this.rope.headDim);
  }

  /** TokenSelect's keys for layer l: q̄ here, the vote in vote.ts, reuse and S by the selector. */
  private async selectKeys(l: number, plan: StepPlan, qkv: Float32Array): Promise<LayerKeys> {
    const b = this.b;
    const c = b.model.config;
    const { spec, localStart } = plan.select!;
    const qbar = meanRotatedQuery(qkv, qkvWidth(c), plan.n, c.numHeads, this.rope, spec.nLocal);
    const vote = async (from: number, to: number, k: number) => {
      const t = performance.now();
      const top = await topBySoftVote(b.ort, b.sessions.vote, c, qbar, this.kv.layers[l].k, from, to, k, b.native);
      b.profile.vote += performance.now() - t;
      return top;
    };
    const before = this.selector.reused;
    const S = await this.selector.select(l, qbar, spec, localStart, plan.T, vote);
    if (this.selector.reused > before) b.profile.reused++;
    else b.profile.voted++;
    // Selection steps never use the rotated-key cache (positions are ranks): free it.
    this.kv.layers[l].kr = null;
    this.kv.layers[l].rotValid = 0;
    return selectedKeys(S, plan.n);
  }

  /** The selected rows' keys (rotated at their rank) and values in float32 (keys.ts). */
  private async gatherSelected(l: number, keys: LayerKeys, T: number): Promise<[Float32Array[], Float32Array[]]> {
    const b = this.b;
    const L = this.kv.layers[l];
    const S = keys.rows!;
    const [sk, sv] = this.attentionScratch(S.length);
    const t = performance.now();
    const rope = this.rope;
    await gatherSelected(b.ort, b.sessions.gather, b.model.config, { keys: L.k, values: L.v, T, rows: S, cos: rope.cos, sin: rope.sin, scale: rope.scale }, sk, sv, b.native);
    b.profile.keys += performance.now() - t;
    return [sk, sv];
  }

  retain(rows: Int32Array): void {
    checkRetain(rows, this.kv.rows);
    this.kv.retain(rows);
    this.selector.reset();
  }

  importRows(source: Sequence, rows: Int32Array): void {
    if (!(source instanceof CpuSequence) || source.b !== this.b) throw new Error('importRows: the source is not a sequence of this backend');
    checkRetain(rows, source.kv.rows, 'importRows');
    this.kv.importRows(source.kv, rows);
  }

  snapshot(): SequenceSnapshot {
    return { ...this.kv.snapshot(), selectCache: this.selector.snapshot() };
  }

  restore(s: SequenceSnapshot): void {
    checkSnapshot(s, this.b.model);
    this.kv.restore(s);
    this.selector.restore(s.selectCache);
  }

  dispose(): void {
    this.kv.release();
    this.attnK = [];
    this.attnV = [];
    this.buffers.clear();
  }
}
