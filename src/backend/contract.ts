// The backend contract: what the engine asks a backend to compute for one step.
//
// The engine (src/engine) decides *what* happens — which rows are fed, at which RoPE positions,
// which keys each row may see, which stored rows survive, which logits are wanted. A backend
// decides *how*: the tensor math and where the KV rows live (JS arrays, ONNX Runtime tensors, GPU
// memory). The same sequence of requests must give the same logits on every backend, to float32
// rounding; the reference backend is the oracle. What a request means for a step independently of
// the device — its checks, the keys each row sees, TokenSelect's choice — is worked out once, in
// ./step/, which every backend calls.
//
// Storage model. A Sequence holds, for every layer, a list of M stored KV rows (the same M for
// every layer). Keys are stored BEFORE RoPE, so rows can change position: a stored row's RoPE
// position is always its storage index (0..M-1), applied at attention time. Each step appends its
// n new rows (all of them) after the stored ones; `retain` then gathers the rows to keep. Every
// strategy is expressed with these two operations:
//   full    positions 0..T-1, nothing dropped
//   stream  retain sink + recent rows before each chunk (positions = cache index)
//   beacon  after a full window, retain [sink ; beacon memory ; the window's beacon rows]
//   select  keep everything; each layer attends to a per-layer selection (SelectSpec)
//   focus   one sequence per chunk (each at positions 0..) and one for the local pass, into which
//           `importRows` copies each chunk's candidate row; retain drops a chunk's old candidate
//
// Shapes: n = new rows in the step, M = stored rows before it, T = M + n, V = vocab size,
// Hq/Hkv = query/KV heads, D = head dim. "Key index" means an index into the concatenation
// [stored rows ; new rows], i.e. 0..T-1.

import type { Model } from '../model/model.js';

/**
 * RoPE frequencies for a step: angle(pos, i) = fround(pos * invFreq[i]), i < R/2, rotate-half layout
 * over the first R = rotaryDim dims of each head (the rest pass unrotated; R = D except Phi).
 */
export interface RopeTable {
  /** [D/2] inverse frequencies (already scaled for PI / NTK / YaRN / truncated / llama3). */
  invFreq: Float32Array;
  /** Multiplies cos and sin (YaRN's attention factor); 1 otherwise. */
  scale: number;
  /**
   * Multiplies the rotated queries only, not the keys (CLEX's log_scale: ln(L)/ln(P)); absent = 1.
   * TokenSelect's mean query for its vote is not scaled.
   */
  queryScale?: number;
}

/**
 * Which keys each new row attends to.
 * - `causal`: new row i sees key indices [0, M + i].
 * - `ranges`: new row i sees the union of three half-open key ranges
 *   ranges[6i .. 6i+5] = [a0, a1, b0, b1, c0, c1] (unused ranges are [0, 0)). Ranges must be
 *   disjoint. Used by the v1 beacon recipe (step-expansion / segmentation / full-coverage). A row
 *   must see at least one key.
 */
export type MaskSpec = { kind: 'causal' } | { kind: 'ranges'; ranges: Int32Array };

/**
 * TokenSelect attention (ALGORITHMS.md §2), executed per layer inside the step. With the new rows
 * appended (T rows), for each layer:
 *   local  = [T - max(nLocal, n), T)                      (always covers the step's own rows)
 *   cands  = [nInit, local start)
 *   if nInit + topK + |local| >= T: S = all rows (plain causal attention, positions = index)
 *   else:
 *     q̄_h  = mean over new rows i of RoPE(q_{i,h}, nLocal + i)          (pre-RoPE queries)
 *     s_h  = softmax_j over cands of q̄_h · K_{j, h / (Hq/Hkv)}          (pre-RoPE keys, no 1/√D)
 *     vote = Σ_h s_h ; top = the topK cands with the largest vote (ties: lower index), sorted
 *     with reuse: if reuseCosine != null and this layer has a cached (q̄, top) from an earlier
 *          step with cos(flat q̄, flat cached q̄) ≥ reuseCosine, top = cached top (indices < cands end)
 *     S = [0, nInit) ∪ top ∪ local
 *   Row i (key index M+i) attends causally to S ∩ [0, M+i]; every position (query and key) is the
 *   row's rank in S (compact re-numbering). `positions` and `mask` of the request are ignored.
 */
export interface SelectSpec {
  nInit: number;
  topK: number;
  nLocal: number;
  /** Reuse the layer's previous selection when the cosine of the mean queries is at least this. */
  reuseCosine: number | null;
}

export interface StepRequest {
  /** [n] token ids. Rows that take the beacon embedding may carry any id (it is ignored for them). */
  tokens: Int32Array;
  /** [n] 1 for a row that runs through the beacon q/k/v(/o) projections. Absent = all 0. */
  beacon?: Uint8Array;
  /**
   * [n] 1 for a row whose input is the beacon embedding, 0 for its token's embedding. Absent = the
   * `beacon` flags: Activation Beacon's beacon rows take both. FocusLLM's candidate rows take the
   * beacon projections with their token's embedding (all 0 here).
   */
  beaconEmbedding?: Uint8Array;
  /** [n] RoPE positions of the new rows (queries and their keys). */
  positions: Int32Array;
  mask: MaskSpec;
  /** TokenSelect attention instead of dense attention (then positions and mask are derived). */
  select?: SelectSpec;
  /** Indices (into the n new rows) whose logits are wanted, in the order wanted. */
  logitRows: Int32Array;
  rope: RopeTable;
  /** Ask for the per-layer selected key indices (tests, diagnostics). */
  reportSelection?: boolean;
}

export interface StepResult {
  /** [logitRows.length, V] row-major. */
  logits: Float32Array;
  /** Per layer, the selected key indices S (ascending), when reportSelection was set. */
  selection?: Int32Array[];
}

/** How KV rows are stored: float32, or IEEE half precision (its 16 bits in a Uint16Array, ../half.ts). */
export type KvDtype = 'f32' | 'f16';
export type KvRows = Float32Array | Uint16Array;

/**
 * Everything needed to rebuild a Sequence on any backend with the same weights (./step/snapshot.ts
 * converts between layouts and dtypes). A snapshot may share memory with its sequence — the cpu
 * backend's does, it copies nothing — so a sequence never changes rows a snapshot holds: it copies
 * them first. A snapshot therefore stays valid while its sequence goes on (it can be written to disk
 * while an answer is generated, or restored later to forget a conversation).
 */
export interface SequenceSnapshot {
  rows: number;
  /** The dtype of every keys/values array. */
  kvDtype: KvDtype;
  /** Per layer, per KV head: keys (pre-RoPE) and values, [rows, D] row-major (an array may be longer: its first rows·D values count). */
  keys: KvRows[][];
  values: KvRows[][];
  /** Per layer TokenSelect reuse cache (null where none). */
  selectCache: Array<{ qbar: Float32Array; top: Int32Array } | null>;
}

export interface Sequence {
  /** Stored KV rows (identical for every layer). */
  readonly length: number;
  /** Runs one step; appends all n new rows' K/V after the stored rows. */
  step(req: StepRequest): Promise<StepResult>;
  /** Keeps only the given stored rows, in the given order: storage = storage[rows]. */
  retain(rows: Int32Array): void;
  /**
   * Appends copies of `source`'s stored rows `rows` (every layer's pre-RoPE key and value) after
   * this sequence's stored rows, where they take the positions of their new storage index.
   * `source` is another sequence of the same backend.
   */
  importRows(source: Sequence, rows: Int32Array): void;
  /** Bytes of KV storage currently held. */
  kvBytes(): number;
  snapshot(): SequenceSnapshot;
  restore(s: SequenceSnapshot): void;
  dispose(): void;
}

export type BackendName = 'reference' | 'cpu' | 'cuda';

export interface Backend {
  readonly name: BackendName;
  /** Numeric mode, part of cache keys: e.g. "f32", "q8", "bf16". */
  readonly numeric: string;
  readonly model: Model;
  /** KV bytes per stored row across all layers (for memory plans). */
  readonly kvBytesPerRow: number;
  newSequence(): Sequence;
  dispose(): Promise<void>;
}

export interface BackendOptions {
  /** Numeric mode requested, e.g. "f32" (default) or "q8" (cpu), "bf16" (cuda). */
  dtype?: string;
  /** Intra-op threads (cpu backend). */
  threads?: number;
  /** Cache folder for converted weights (cpu backend). */
  cacheDir?: string;
  /** How KV rows are stored (cpu backend): "f16" (default, half the memory) or "f32" (exact checks). */
  kvDtype?: string;
  /** Stops slow one-time work while the backend starts (hashing the weights: cpu backend). */
  signal?: AbortSignal;
}
