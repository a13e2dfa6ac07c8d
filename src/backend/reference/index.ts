// The reference backend: the contract (../contract.ts) computed with obvious loops in float32.
// It is the oracle every other backend is tested against, and it is how CI checks the algorithms
// against the papers' reference code (../shared/golden) without a GPU.
//
// One step, for n new rows over M stored rows (T = M + n), per layer:
//   h      = rmsNorm(x)                                  x: [n, H]
//   q,k,v  = h Wq,k,v (+ b)   — beacon rows use the beacon projections
//   store k (pre-RoPE), v at rows [M, T)
//   attn_i = softmax_j(RoPE(q_i, p_i) · RoPE(k_j, p_j) / √D) v_j   over the keys row i may see
//   x     += attn Wo          — beacon rows use beacon_o when the checkpoint has it
//   x     += down(silu(gate(rmsNorm(x))) ⊙ up(rmsNorm(x)))
// logits = rmsNorm(x[logitRows]) Wlm.

import type { Model } from '../../model/model.js';
import type { ModuleTensors } from '../../model/tensors.js';
import type { Backend, BackendOptions, Sequence, SequenceSnapshot, StepRequest, StepResult } from '../contract.js';
import { visibleKeys } from '../contract.js';
import { cosine, selectedSet, selectionBounds, topKBySoftVote } from '../select.js';
import { linear, rmsNorm, RopeCache, ropeInPlace, silu, softmaxInPlace } from './math.js';

/** A module's tensors as float32: w (a linear's [out, in] weight, a norm's [dim]) and b, its bias. */
interface Weights {
  w: Float32Array;
  b?: Float32Array;
}

/** Role -> weights (model/tensors.ts names the roles: q, k, v, o, beaconQ, inputNorm, gate, ...). */
type LayerWeights = Record<string, Weights>;

export class ReferenceBackend implements Backend {
  readonly name = 'reference' as const;
  readonly numeric = 'f32';
  readonly model: Model;
  readonly kvBytesPerRow: number;
  readonly embed: Float32Array;
  readonly beaconEmbed?: Float32Array;
  readonly finalNorm: Float32Array;
  readonly lmHead: Float32Array;
  readonly layers: LayerWeights[];

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
    const loadAll = (mods: Record<string, ModuleTensors>) => Object.fromEntries(Object.entries(mods).map(([role, m]) => [role, load(m)]));
    const top = loadAll(model.tensors.model);
    this.embed = top.embed.w;
    this.beaconEmbed = top.beaconEmbed?.w;
    this.finalNorm = top.finalNorm.w;
    this.lmHead = top.lmHead.w;
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
  private selectCache: Array<{ qbar: Float32Array; top: Int32Array } | null>;
  private readonly rope = new RopeCache();

  constructor(private readonly b: ReferenceBackend) {
    const c = b.model.config;
    const kvDim = c.numKvHeads * c.headDim;
    this.keys = Array.from({ length: c.numLayers }, () => new KvStore(kvDim));
    this.values = Array.from({ length: c.numLayers }, () => new KvStore(kvDim));
    this.selectCache = Array.from({ length: c.numLayers }, () => null);
  }

  get length(): number {
    return this.rows;
  }

  kvBytes(): number {
    return this.rows * this.b.kvBytesPerRow;
  }

  async step(req: StepRequest): Promise<StepResult> {
    const c = this.b.model.config;
    const H = c.hiddenSize;
    const D = c.headDim;
    const Hq = c.numHeads;
    const Hkv = c.numKvHeads;
    const qDim = Hq * D;
    const kvDim = Hkv * D;
    const n = req.tokens.length;
    const M = this.rows;
    const T = M + n;
    const isBeacon = (i: number) => (req.beacon ? req.beacon[i] === 1 : false);

    // x [n, H]: token embeddings; beacon rows take the single beacon embedding row.
    const x = new Float32Array(n * H);
    for (let i = 0; i < n; i++) {
      if (isBeacon(i)) {
        if (!this.b.beaconEmbed) throw new Error('beacon row requested but the model has no beacon embedding');
        x.set(this.b.beaconEmbed, i * H);
      } else {
        const id = req.tokens[i];
        if (id < 0 || id >= c.vocabSize) throw new Error(`token id ${id} outside the vocabulary (${c.vocabSize})`);
        x.set(this.b.embed.subarray(id * H, (id + 1) * H), i * H);
      }
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
      rmsNorm(x, n, H, L.inputNorm.w, c.rmsNormEps, h);
      for (let i = 0; i < n; i++) {
        const [pq, pk, pv] = isBeacon(i) ? [L.beaconQ, L.beaconK, L.beaconV] : [L.q, L.k, L.v];
        const hi = h.subarray(i * H, (i + 1) * H);
        linear(hi, 1, H, pq.w, pq.b, qDim, q, i * qDim);
        linear(hi, 1, H, pk.w, pk.b, kvDim, K.data, (M + i) * kvDim);
        linear(hi, 1, H, pv.w, pv.b, kvDim, V.data, (M + i) * kvDim);
      }

      // Which keys each row sees and at which positions.
      let keyRows: Int32Array; // keys in play, ascending key index
      let keyPos: Int32Array; // their RoPE positions
      let queryPos: Int32Array; // [n]
      let seenBy: (i: number, seen: Int32Array) => number; // fills indices into keyRows, returns count
      if (req.select) {
        const S = this.selectRows(l, req, q, M, n);
        keyRows = S;
        if (req.reportSelection) selection.push(S);
        keyPos = Int32Array.from(S, (_, r) => r); // compact: rank in S
        const firstNew = S.indexOf(M); // the step's own rows are the tail of S
        queryPos = Int32Array.from({ length: n }, (_, i) => firstNew + i);
        seenBy = (i, seen) => {
          let ns = 0;
          for (let r = 0; r < S.length && S[r] <= M + i; r++) seen[ns++] = r;
          return ns;
        };
      } else {
        keyRows = Int32Array.from({ length: T }, (_, j) => j);
        keyPos = Int32Array.from({ length: T }, (_, j) => (j < M ? j : req.positions[j - M]));
        queryPos = req.positions;
        const ranges: Array<[number, number]> = [];
        seenBy = (i, seen) => {
          const nr = visibleKeys(req.mask, M, i, ranges);
          let ns = 0;
          for (let r = 0; r < nr; r++) for (let j = ranges[r][0]; j < ranges[r][1]; j++) seen[ns++] = j;
          return ns;
        };
      }

      // Rotated keys for the keys in play: kr [keyRows.length, kvDim].
      const nk = keyRows.length;
      let maxPos = 0;
      for (const p of keyPos) if (p > maxPos) maxPos = p;
      for (const p of queryPos) if (p > maxPos) maxPos = p;
      this.rope.ensure(req.rope.invFreq, req.rope.scale, maxPos + 1);
      const kr = new Float32Array(nk * kvDim);
      for (let r = 0; r < nk; r++) {
        kr.set(K.data.subarray(keyRows[r] * kvDim, (keyRows[r] + 1) * kvDim), r * kvDim);
        this.rope.rotate(kr, r * kvDim, Hkv, D, keyPos[r]);
      }

      // Attention per row and head (GQA: head hq uses KV head hq / (Hq/Hkv)).
      const scale = 1 / Math.sqrt(D);
      const group = Hq / Hkv;
      const scores = new Float64Array(nk);
      const seen = new Int32Array(nk);
      const qi = new Float32Array(qDim);
      const acc = new Float64Array(D);
      for (let i = 0; i < n; i++) {
        const ns = seenBy(i, seen);
        qi.set(q.subarray(i * qDim, (i + 1) * qDim));
        this.rope.rotate(qi, 0, Hq, D, queryPos[i]);
        for (let hq = 0; hq < Hq; hq++) {
          const kvo = Math.floor(hq / group) * D;
          for (let s = 0; s < ns; s++) {
            const ko = seen[s] * kvDim + kvo;
            let dot = 0;
            for (let d = 0; d < D; d++) dot += qi[hq * D + d] * kr[ko + d];
            scores[s] = dot * scale;
          }
          softmaxInPlace(scores, ns);
          const out = i * qDim + hq * D;
          acc.fill(0);
          for (let s = 0; s < ns; s++) {
            const p = scores[s];
            const vo = keyRows[seen[s]] * kvDim + kvo;
            for (let d = 0; d < D; d++) acc[d] += p * V.data[vo + d];
          }
          for (let d = 0; d < D; d++) attn[out + d] = acc[d];
        }
      }

      // Output projection and MLP, residuals.
      for (let i = 0; i < n; i++) {
        const o = isBeacon(i) ? L.beaconO : L.o;
        linear(attn.subarray(i * qDim, (i + 1) * qDim), 1, qDim, o.w, o.b, H, rowOut);
        for (let d = 0; d < H; d++) x[i * H + d] += rowOut[d];
      }
      rmsNorm(x, n, H, L.postNorm.w, c.rmsNormEps, h);
      for (let i = 0; i < n; i++) {
        const hi = h.subarray(i * H, (i + 1) * H);
        linear(hi, 1, H, L.gate.w, L.gate.b, c.intermediateSize, gate);
        linear(hi, 1, H, L.up.w, L.up.b, c.intermediateSize, up);
        for (let j = 0; j < c.intermediateSize; j++) gate[j] = silu(gate[j]) * up[j];
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
    rmsNorm(picked, nl, H, this.b.finalNorm, c.rmsNormEps, normed);
    const logits = new Float32Array(nl * c.vocabSize);
    linear(normed, nl, H, this.b.lmHead, undefined, c.vocabSize, logits);
    return { logits, selection: req.reportSelection ? selection : undefined };
  }

  /** TokenSelect's per-layer selected rows S (contract.ts, SelectSpec). */
  private selectRows(l: number, req: StepRequest, q: Float32Array, M: number, n: number): Int32Array {
    const c = this.b.model.config;
    const spec = req.select!;
    const T = M + n;
    const { localStart, all } = selectionBounds(T, n, spec);
    if (all) return Int32Array.from({ length: T }, (_, j) => j);
    const D = c.headDim;
    const qDim = c.numHeads * D;
    // q̄ = mean_i RoPE(q_i, nLocal + i), per head.
    const qbar = new Float32Array(qDim);
    const qi = new Float32Array(qDim);
    for (let i = 0; i < n; i++) {
      qi.set(q.subarray(i * qDim, (i + 1) * qDim));
      for (let hq = 0; hq < c.numHeads; hq++) ropeInPlace(qi, hq * D, D, spec.nLocal + i, req.rope.invFreq, 1);
      for (let d = 0; d < qDim; d++) qbar[d] += qi[d] / n;
    }
    const cached = this.selectCache[l];
    let top: Int32Array;
    if (spec.reuseCosine !== null && cached && cosine(qbar, cached.qbar) >= spec.reuseCosine) {
      top = cached.top.filter((j) => j >= spec.nInit && j < localStart);
    } else {
      top = topKBySoftVote(qbar, this.keys[l].data, c.numHeads, c.numKvHeads, D, spec.nInit, localStart, spec.topK);
      this.selectCache[l] = { qbar, top };
    }
    return selectedSet(spec.nInit, top, localStart, T);
  }

  retain(rows: Int32Array): void {
    for (const store of [...this.keys, ...this.values]) {
      const kvDim = store.kvDim;
      const next = new Float32Array(Math.max(rows.length, 64) * kvDim);
      for (let r = 0; r < rows.length; r++) {
        if (rows[r] < 0 || rows[r] >= this.rows) throw new Error(`retain: row ${rows[r]} outside 0..${this.rows - 1}`);
        next.set(store.data.subarray(rows[r] * kvDim, (rows[r] + 1) * kvDim), r * kvDim);
      }
      store.data = next;
    }
    this.rows = rows.length;
    // Cached selections index rows that may have moved; a strategy that retains never reuses them.
    this.selectCache = this.selectCache.map(() => null);
  }

  snapshot(): SequenceSnapshot {
    const take = (s: KvStore) => s.data.slice(0, this.rows * s.kvDim);
    return {
      rows: this.rows,
      keys: this.keys.map(take),
      values: this.values.map(take),
      selectCache: this.selectCache.map((e) => (e ? { qbar: e.qbar.slice(), top: e.top.slice() } : null)),
    };
  }

  restore(s: SequenceSnapshot): void {
    const c = this.b.model.config;
    if (s.keys.length !== c.numLayers) throw new Error(`snapshot has ${s.keys.length} layers, model has ${c.numLayers}`);
    this.rows = s.rows;
    this.keys.forEach((store, l) => {
      store.data = new Float32Array(Math.max(s.rows, 64) * store.kvDim);
      store.data.set(s.keys[l]);
    });
    this.values.forEach((store, l) => {
      store.data = new Float32Array(Math.max(s.rows, 64) * store.kvDim);
      store.data.set(s.values[l]);
    });
    this.selectCache = s.selectCache.map((e) => (e ? { qbar: e.qbar.slice(), top: e.top.slice() } : null));
  }

  dispose(): void {}
}
