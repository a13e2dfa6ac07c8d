// The reference backend: the contract (../contract.ts) computed with obvious loops in float32.
// It is the oracle every other backend is tested against, and it is how CI checks the algorithms
// against the papers' reference code (../shared/golden) without a GPU.
//
// One step, for n new rows over M stored rows (T = M + n); which keys each row sees and at which
// positions is the step plan's (../step/plan.ts), TokenSelect's choice the selector's
// (../step/select.ts). Per layer:
//   h      = rmsNorm(x)                                  x: [n, H]
//   q,k,v  = h Wq,k,v (+ b)   — beacon rows use the beacon projections
//   store k (pre-RoPE), v at rows [M, T)
//   keys   = the plan's (dense), or the layer's selection S (TokenSelect: q̄ and the vote here)
//   attn_i = softmax_j(s·RoPE(q_i, p_i) · RoPE(k_j, p_j) / √D) v_j   over the keys row i sees
//            (s = the rope table's query scale, CLEX's log_scale; 1 otherwise)
//            (softplus models: LSSA / LSSAR weights of the cosines, ../attention-softplus.ts)
//   x     += attn Wo (+ b)    — beacon rows use beaconO (the base o_proj unless the checkpoint has one)
//   x     += down(silu(gate(rmsNorm(x))) ⊙ up(rmsNorm(x)))
// logits = rmsNorm(x[logitRows]) Wlm (+ b).
// The block's shape comes from the config (config.ts BlockShape): LayerNorm instead of RMSNorm, a
// GELU MLP down(gelu_tanh(up(h))), and Phi's parallel layout, where the MLP reads the same h as the
// attention (x += attn Wo + mlp(h)); RoPE rotates the first rotaryDim dims of each head.

import type { Model } from '../../model/model.js';
import type { ModuleTensors, Modules } from '../../model/tensors.js';
import { cosineSimilarity, softplusWeightsInPlace } from '../attention-softplus.js';
import type { Backend, BackendOptions, Sequence, SequenceSnapshot, StepRequest, StepResult } from '../contract.js';
import { allRows, checkRetain, keyPosition, planStep, selectedKeys, visibleRanges, type LayerKeys } from '../step/plan.js';
import { checkSnapshot, layerAsFloat32, snapshotFromLayers } from '../step/snapshot.js';
import { RopeTables } from '../step/rope.js';
import { meanRotatedQuery, TokenSelector } from '../step/select.js';
import { geluTanh, layerNorm, linear, rmsNorm, silu, softmaxInPlace, softVoteTopK } from './math.js';

/** A module's tensors as float32: w (a linear's [out, in] weight, a norm's [dim]) and b, its bias. */
interface Weights {
  w: Float32Array;
  b?: Float32Array;
}

/** Role -> weights (model/tensors.ts names the roles: q, k, v, o, beaconQ, inputNorm, gate, ...). */
type RoleWeights = Record<string, Weights>;

export class ReferenceBackend implements Backend {
  readonly name = 'reference' as const;
  readonly numeric = 'f32';
  readonly model: Model;
  readonly kvBytesPerRow: number;
  readonly top: RoleWeights;
  readonly layers: RoleWeights[];

  constructor(model: Model) {
    const c = model.config;
    this.model = model;
    this.kvBytesPerRow = 2 * c.numLayers * c.numKvHeads * c.headDim * 4;
    // Every module of the table, each tensor read once (roles that fall back share their tensors).
    const read = new Map<string, Float32Array>();
    const get = (name: string) => {
      let t = read.get(name);
      if (!t) read.set(name, (t = model.weights.float32(name)));
      return t;
    };
    const load = (m: ModuleTensors): Weights => ({ w: get(m.tensors.weight.name), b: m.tensors.bias ? get(m.tensors.bias.name) : undefined });
    // Host modules (CLEX's ODE) are the engine's: they reach a step as its RoPE table.
    const loadAll = (mods: Modules): RoleWeights =>
      Object.fromEntries(Object.entries(mods).filter(([, m]) => m.kind !== 'host').map(([role, m]) => [role, load(m)]));
    this.top = loadAll(model.tensors.model);
    this.layers = model.tensors.layers.map(loadAll);
  }

  newSequence(): Sequence {
    return new ReferenceSequence(this);
  }

  async dispose(): Promise<void> {}
}

export async function createReferenceBackend(model: Model, _opts: BackendOptions = {}): Promise<Backend> {
  return new ReferenceBackend(model);
}

/** Per-layer growable KV storage: rows of kvDim floats. */
class KvStore {
  data: Float32Array;
  constructor(readonly kvDim: number) {
    this.data = new Float32Array(kvDim * 64);
  }
  reserve(rows: number): void {
    if (rows * this.kvDim <= this.data.length) return;
    let cap = this.data.length / this.kvDim;
    while (cap < rows) cap *= 2;
    const next = new Float32Array(cap * this.kvDim);
    next.set(this.data);
    this.data = next;
  }
}

class ReferenceSequence implements Sequence {
  private rows = 0;
  private readonly keys: KvStore[];
  private readonly values: KvStore[];
  private readonly selector: TokenSelector;
  private readonly rope: RopeTables;

  constructor(private readonly b: ReferenceBackend) {
    const c = b.model.config;
    const kvDim = c.numKvHeads * c.headDim;
    this.keys = Array.from({ length: c.numLayers }, () => new KvStore(kvDim));
    this.values = Array.from({ length: c.numLayers }, () => new KvStore(kvDim));
    this.selector = new TokenSelector(c.numLayers);
    this.rope = new RopeTables(c.headDim, c.rotaryDim);
  }

  get length(): number {
    return this.rows;
  }

  kvBytes(): number {
    return this.rows * this.b.kvBytesPerRow;
  }

  async step(req: StepRequest): Promise<StepResult> {
    const c = this.b.model.config;
    const plan = planStep(req, this.rows, this.b.model);
    const { n, M, T } = plan;
    const H = c.hiddenSize;
    const D = c.headDim;
    const Hq = c.numHeads;
    const qDim = Hq * D;
    const kvDim = c.numKvHeads * D;
    const isBeacon = (i: number) => plan.beacon?.[i] === 1;
    this.rope.use(req.rope, plan.maxPosition);

    // x [n, H]: token embeddings; beacon-embedding rows take the single beacon embedding row.
    const x = new Float32Array(n * H);
    for (let i = 0; i < n; i++) {
      if (plan.beaconEmbedding?.[i] === 1) x.set(this.b.top.beaconEmbed.w, i * H);
      else x.set(this.b.top.embed.w.subarray(req.tokens[i] * H, (req.tokens[i] + 1) * H), i * H);
    }

    const h = new Float32Array(n * H);
    const q = new Float32Array(n * qDim);
    const attn = new Float32Array(n * qDim);
    const gate = new Float32Array(c.intermediateSize);
    const up = new Float32Array(c.intermediateSize);
    const mlpOut = new Float32Array(H);
    const rowOut = new Float32Array(H);
    const selection: Int32Array[] = [];

    for (let l = 0; l < c.numLayers; l++) {
      const L = this.b.layers[l];
      const K = this.keys[l];
      const V = this.values[l];
      K.reserve(T);
      V.reserve(T);

      // Projections, row by row so beacon rows can use their own weights.
      this.norm(x, n, L.inputNorm, h);
      for (let i = 0; i < n; i++) {
        const [pq, pk, pv] = isBeacon(i) ? [L.beaconQ, L.beaconK, L.beaconV] : [L.q, L.k, L.v];
        const hi = h.subarray(i * H, (i + 1) * H);
        linear(hi, 1, H, pq.w, pq.b, qDim, q, i * qDim);
        linear(hi, 1, H, pk.w, pk.b, kvDim, K.data, (M + i) * kvDim);
        linear(hi, 1, H, pv.w, pv.b, kvDim, V.data, (M + i) * kvDim);
      }

      // The keys this layer attends to: the plan's, or TokenSelect's S for this layer.
      let keys: LayerKeys;
      if (plan.select) {
        const { spec, localStart } = plan.select;
        const qbar = meanRotatedQuery(q, qDim, n, Hq, this.rope, spec.nLocal);
        const vote = (from: number, to: number, k: number) => softVoteTopK(qbar, K.data, Hq, c.numKvHeads, D, from, to, k);
        keys = selectedKeys(await this.selector.select(l, qbar, spec, localStart, T, vote), n);
      } else {
        keys = plan.keys!;
      }
      if (req.reportSelection && (plan.select || plan.selectsAll)) selection.push(keys.rows ?? allRows(T));
      this.attend(keys, q, K.data, V.data, n, attn, req.rope.queryScale ?? 1);

      // Output projection and MLP, residuals.
      for (let i = 0; i < n; i++) {
        const o = isBeacon(i) ? L.beaconO : L.o;
        linear(attn.subarray(i * qDim, (i + 1) * qDim), 1, qDim, o.w, o.b, H, rowOut);
        for (let d = 0; d < H; d++) x[i * H + d] += rowOut[d];
      }
      // Parallel blocks: h still holds the input norm of x before attention, which the MLP reads too.
      if (!c.block.parallel) this.norm(x, n, L.postNorm, h);
      for (let i = 0; i < n; i++) {
        const hi = h.subarray(i * H, (i + 1) * H);
        if (c.block.mlp === 'swiglu') {
          linear(hi, 1, H, L.gate.w, L.gate.b, c.intermediateSize, gate);
          linear(hi, 1, H, L.up.w, L.up.b, c.intermediateSize, up);
          for (let j = 0; j < c.intermediateSize; j++) gate[j] = silu(gate[j]) * up[j];
        } else {
          linear(hi, 1, H, L.up.w, L.up.b, c.intermediateSize, gate);
          for (let j = 0; j < c.intermediateSize; j++) gate[j] = geluTanh(gate[j]);
        }
        linear(gate, 1, c.intermediateSize, L.down.w, L.down.b, H, mlpOut);
        for (let d = 0; d < H; d++) x[i * H + d] += mlpOut[d];
      }
    }
    this.rows = T;

    // Logits for the rows asked.
    const nl = req.logitRows.length;
    const picked = new Float32Array(nl * H);
    for (let k = 0; k < nl; k++) picked.set(x.subarray(req.logitRows[k] * H, (req.logitRows[k] + 1) * H), k * H);
    const normed = new Float32Array(nl * H);
    this.norm(picked, nl, this.b.top.finalNorm, normed);
    const logits = new Float32Array(nl * c.vocabSize);
    const head = this.b.top.lmHead;
    linear(normed, nl, H, head.w, head.b, c.vocabSize, logits);
    return { logits, selection: req.reportSelection ? selection : undefined };
  }

  /** out [rows, H] = the block's norm of x [rows, H] (RMSNorm, or LayerNorm with its bias). */
  private norm(x: Float32Array, rows: number, w: Weights, out: Float32Array): void {
    const c = this.b.model.config;
    if (c.block.norm === 'layer') layerNorm(x, rows, c.hiddenSize, w.w, w.b!, c.rmsNormEps, out);
    else rmsNorm(x, rows, c.hiddenSize, w.w, c.rmsNormEps, out);
  }

  /**
   * attn [n, Hq·D] = per row and head, softmax over the keys the row sees of
   * (queryScale·RoPE(q_i))·RoPE(k_j)/√D, times the values (GQA: query head hq uses KV head
   * hq / (Hq/Hkv)). K, V: [T, Hkv·D] pre-RoPE.
   * Softplus models: the weights are softplus attention's (../attention-softplus.ts) over the cosine
   * similarities of exactly the keys the row sees, so its n is that count.
   */
  private attend(keys: LayerKeys, q: Float32Array, K: Float32Array, V: Float32Array, n: number, attn: Float32Array, queryScale: number): void {
    const c = this.b.model.config;
    const D = c.headDim;
    const Hq = c.numHeads;
    const Hkv = c.numKvHeads;
    const qDim = Hq * D;
    const kvDim = Hkv * D;
    const nk = keys.count;
    const row = (r: number) => (keys.rows ? keys.rows[r] : r);

    // Rotated keys in play: kr [nk, kvDim].
    const kr = new Float32Array(nk * kvDim);
    for (let r = 0; r < nk; r++) this.rope.rotate(K, row(r) * kvDim, kr, r * kvDim, Hkv, keyPosition(keys, r));

    const scale = 1 / Math.sqrt(D);
    const sp = c.softplus;
    const group = Hq / Hkv;
    const scores = new Float64Array(nk);
    const seen = new Int32Array(nk);
    const ranges: Array<[number, number]> = [];
    const qi = new Float32Array(qDim);
    const acc = new Float64Array(D);
    for (let i = 0; i < n; i++) {
      let ns = 0;
      const nr = visibleRanges(keys, i, ranges);
      for (let k = 0; k < nr; k++) for (let j = ranges[k][0]; j < ranges[k][1]; j++) seen[ns++] = j;
      this.rope.rotate(q, i * qDim, qi, 0, Hq, keys.positions[i]);
      if (queryScale !== 1) for (let d = 0; d < qDim; d++) qi[d] *= queryScale;
      for (let hq = 0; hq < Hq; hq++) {
        const kvo = Math.floor(hq / group) * D;
        if (sp) {
          // Softplus attention: cosine similarities, weights over the ns keys this row sees.
          for (let s = 0; s < ns; s++) scores[s] = cosineSimilarity(qi, hq * D, kr, seen[s] * kvDim + kvo, D);
          softplusWeightsInPlace(scores, ns, D, sp);
        } else {
          for (let s = 0; s < ns; s++) {
            const ko = seen[s] * kvDim + kvo;
            let dot = 0;
            for (let d = 0; d < D; d++) dot += qi[hq * D + d] * kr[ko + d];
            scores[s] = dot * scale;
          }
          softmaxInPlace(scores, ns);
        }
        acc.fill(0);
        for (let s = 0; s < ns; s++) {
          const p = scores[s];
          const vo = row(seen[s]) * kvDim + kvo;
          for (let d = 0; d < D; d++) acc[d] += p * V[vo + d];
        }
        for (let d = 0; d < D; d++) attn[i * qDim + hq * D + d] = acc[d];
      }
    }
  }

  retain(rows: Int32Array): void {
    checkRetain(rows, this.rows);
    for (const store of [...this.keys, ...this.values]) {
      const kvDim = store.kvDim;
      const next = new Float32Array(Math.max(rows.length, 64) * kvDim);
      for (let r = 0; r < rows.length; r++) next.set(store.data.subarray(rows[r] * kvDim, (rows[r] + 1) * kvDim), r * kvDim);
      store.data = next;
    }
    this.rows = rows.length;
    this.selector.reset();
  }

  importRows(source: Sequence, rows: Int32Array): void {
    if (!(source instanceof ReferenceSequence) || source.b !== this.b) throw new Error('importRows: the source is not a sequence of this backend');
    checkRetain(rows, source.rows, 'importRows');
    const T = this.rows + rows.length;
    const copy = (to: KvStore, from: KvStore) => {
      to.reserve(T);
      const d = to.kvDim;
      rows.forEach((r, k) => to.data.set(from.data.subarray(r * d, (r + 1) * d), (this.rows + k) * d));
    };
    this.keys.forEach((store, l) => copy(store, source.keys[l]));
    this.values.forEach((store, l) => copy(store, source.values[l]));
    this.rows = T;
  }

  snapshot(): SequenceSnapshot {
    const c = this.b.model.config;
    const take = (s: KvStore) => s.data.subarray(0, this.rows * s.kvDim);
    return snapshotFromLayers(this.rows, this.keys.map(take), this.values.map(take), c.numKvHeads, c.headDim, this.selector.snapshot());
  }

  restore(s: SequenceSnapshot): void {
    checkSnapshot(s, this.b.model);
    const D = this.b.model.config.headDim;
    this.rows = s.rows;
    const fill = (store: KvStore, heads: SequenceSnapshot['keys'][number]) => {
      store.data = new Float32Array(Math.max(s.rows, 64) * store.kvDim);
      store.data.set(layerAsFloat32(heads, s.rows, D));
    };
    this.keys.forEach((store, l) => fill(store, s.keys[l]));
    this.values.forEach((store, l) => fill(store, s.values[l]));
    this.selector.restore(s.selectCache);
  }

  dispose(): void {}
}
