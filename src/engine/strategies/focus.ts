// `focus`: FocusLLM (arXiv 2408.11745; ../shared/research/FOCUSLLM.md, from the official code
// leezythu/FocusLLM @ac695a6). The prompt's context is cut into chunks; each chunk is run in a
// sequence of its own with the prompt's tail appended, the prompt's last token last as the
// "candidate" (beacon_{q,k,v,o} projections, its ordinary embedding); the local pass attends to the
// C candidates and the local window and gives the logits. Every generated token extends every
// chunk and the local pass is re-encoded in full. The chunk plan is focus-plan.ts's.
//
// Backend steps (contract.ts), with the positions of every sequence equal to its storage index:
//   chunk pass i     seq_i: [chunk_i's own rows ; bos(tail) ; generated ; candidate]      one step
//   local pass       ctx.seq ← importRows(the C candidates) at 0..C−1; bos(local window) ‖ g_1..g_k
//                    at C, C+1, …; its logits; then retain([]) (nothing of it is kept)
//   decode, token t  seq_i: retain all but the candidate; step [previous token, t], t the candidate;
//                    then the local pass
//   below the chunking threshold: plain causal attention over bos(prompt) in ctx.seq, a KV cache
//   (the official code recomputes it at each step; the logits agree).
//
// The prompt is everything fed before the first decoding feed. A feed that is not decoding ends the
// prompt again: the plan is made anew over every token fed so far (FocusLLM's memory.reset() for a
// new prompt). A chunk's own rows depend on its tokens only, so a chunk that was run before keeps
// them and runs only its new tokens, the tail and the candidate. `ctx ask` reads the document with
// noLogits (only the chunks' own rows), then feeds the question: the document is read once, and the
// tails, candidates and local pass are run once, for the whole prompt.

import type { KvRows, Sequence, SequenceSnapshot } from '../../backend/contract.js';
import { CtxError } from '../../errors.js';
import type { FocusSettings } from '../../model/focus-config.js';
import { focusCost, planFocus, type FocusPlan } from './focus-plan.js';
import { concatLogits, range, runStep, type FeedOptions, type MemoryStats, type RowStorage, type Strategy, type StrategyContext, type StrategyState } from './strategy.js';

export interface FocusOptions {
  settings: FocusSettings;
  /** Positions the model can address (RoPE capacity). */
  capacity: number;
  /** Rows per step below the chunking threshold (plain attention). */
  chunk: number;
}

/** One chunk's sequence. */
interface Chunk {
  seq: Sequence;
  /** Where the chunk starts in the prompt. */
  start: number;
  /** Leading rows of seq that hold the chunk's own tokens [start, start + own): valid whatever follows. */
  own: number;
  /** Whether seq ends with the chunk's candidate row (after its tail and generated tokens). */
  candidate: boolean;
}

const NONE = new Int32Array(0);

export class FocusStrategy implements Strategy {
  readonly name = 'focus' as const;
  readonly storage: RowStorage;
  /** Every token fed: the prompt, then the generated ones. */
  private tokens: number[] = [];
  /** The plan of the prompt tokens[0, plan.n); null before a prompt ran or after an interrupted feed. */
  private plan: FocusPlan | null = null;
  /** Tokens fed after the prompt (k). */
  private generated = 0;
  private chunks: Chunk[] = [];
  /** Set by loadState: how many rows ctx.seq and each chunk take from the snapshot storage.restore gets. */
  private restoring: { plain: number; chunks: Array<Omit<Chunk, 'seq'> & { rows: number }> } | null = null;

  constructor(private readonly ctx: StrategyContext, private readonly opts: FocusOptions) {
    this.storage = {
      kvBytes: () => this.sequences().reduce((sum, q) => sum + q.kvBytes(), 0),
      snapshot: () => joinSnapshots(this.sequences().map((q) => q.snapshot()), this.ctx.config.headDim),
      restore: (s) => this.restoreRows(s),
      dispose: () => this.sequences().forEach((q) => q.dispose()),
    };
  }

  /** ctx.seq (the plain cache, or empty between local passes), then the chunks' sequences in order. */
  private sequences(): Sequence[] {
    return [this.ctx.seq, ...this.chunks.map((c) => c.seq)];
  }

  remainingCapacity(): number {
    // A prompt feed plans anew (and refuses a plan that does not fit); this bounds generated tokens.
    if (!this.plan) return Infinity;
    return this.opts.capacity - focusCost(this.plan, this.generated).positions;
  }

  async feed(tokens: Int32Array, opts: FeedOptions = {}): Promise<Float32Array> {
    const before = this.tokens.length;
    let done = 0;
    const report = (d: number) => {
      if (d <= done) return;
      done = d;
      opts.onStep?.(d);
    };
    try {
      if (opts.decoding && this.plan) return await this.decode(tokens, opts, report);
      for (const t of tokens) this.tokens.push(t);
      return await this.runPrompt(opts, (fed) => report(fed - before));
    } catch (e) {
      // The tokens reported stay fed (the session records them); the rest is undone, and the next
      // feed plans anew from the chunks' own rows, which stay valid.
      this.tokens.length = before + done;
      this.plan = null;
      throw e;
    }
  }

  /**
   * Plans the prompt tokens[0, N) and runs it: plain attention, or the chunk passes and the local
   * pass. With noLogits, only the chunks' own rows (which the question does not change) are run, and
   * the prompt stays open.
   */
  private async runPrompt(opts: FeedOptions, fed: (prefixLength: number) => void): Promise<Float32Array> {
    this.plan = null;
    this.generated = 0;
    const plan = planFocus(this.tokens, this.opts.settings);
    if (opts.noLogits) {
      if (plan.chunked) await this.runChunks(plan, opts, fed);
      fed(plan.n);
      return new Float32Array(0);
    }
    this.checkPositions(plan, 0);
    const logits = plan.chunked ? await this.runChunks(plan, opts, fed) : await this.runPlain(plan, opts, fed);
    fed(plan.n);
    this.plan = plan;
    return logits;
  }

  private checkPositions(plan: FocusPlan, k: number): void {
    const need = focusCost(plan, k).positions;
    if (need <= this.opts.capacity) return;
    const what = plan.chunked
      ? `${plan.chunks.length} chunks of up to ${Math.max(...plan.chunkPassLengths)} rows and a local pass of ${plan.chunks.length} candidates + ${plan.prefillRows} rows`
      : `plain attention over ${plan.prefillRows} rows (below the chunking threshold ${this.opts.settings.shortPromptLimit})`;
    throw new CtxError('doesNotFit', `focus needs ${need} positions for ${plan.n} prompt tokens and ${k} generated ones (${what}); the model has ${this.opts.capacity}`);
  }

  /**
   * Below the threshold: bos(prompt) into ctx.seq, causally, after the tokens it holds already
   * (a cache of bos(prompt) is a prefix of the longer prompt's).
   */
  private async runPlain(plan: FocusPlan, opts: FeedOptions, fed: (prefixLength: number) => void): Promise<Float32Array> {
    this.dropChunks();
    const seq = this.ctx.seq;
    const bos = plan.localBos ? 1 : 0;
    const rows = [...(seq.length === 0 && bos ? [this.opts.settings.bosId] : []), ...this.tokens.slice(Math.max(0, seq.length - bos))];
    const parts: Float32Array[] = [];
    for (let s = 0; s < rows.length; s += this.opts.chunk) {
      const piece = Int32Array.from(rows.slice(s, s + this.opts.chunk));
      const M = seq.length;
      const last = s + piece.length === rows.length;
      const logitRows = opts.allLogits ? range(0, piece.length) : last ? Int32Array.of(piece.length - 1) : NONE;
      parts.push(await this.step(seq, { tokens: piece, positions: range(M, piece.length), logitRows }, opts.signal));
      fed(seq.length - bos);
    }
    return concatLogits(parts);
  }

  /**
   * Chunk passes (chunks run before keep their own rows), then the local pass. With noLogits, only
   * the chunks' own rows.
   */
  private async runChunks(plan: FocusPlan, opts: FeedOptions, fed: (prefixLength: number) => void): Promise<Float32Array> {
    const s = this.opts.settings;
    if (this.ctx.seq.length > 0) this.ctx.seq.retain(NONE);
    const tail = opts.noLogits ? [] : [...(plan.tailBos ? [s.bosId] : []), ...this.tokens.slice(plan.tailStart, plan.n)];
    for (const c of this.chunks.splice(plan.chunks.length)) c.seq.dispose();
    for (let i = 0; i < plan.chunks.length; i++) {
      const [a, b] = plan.chunks[i];
      let chunk = this.chunks[i];
      if (!chunk || chunk.start !== a) {
        chunk?.seq.dispose();
        chunk = this.chunks[i] = { seq: this.ctx.newSequence(), start: a, own: 0, candidate: false };
      }
      const keep = Math.min(chunk.own, b - a);
      if (chunk.seq.length > keep) chunk.seq.retain(range(0, keep));
      chunk.own = keep;
      chunk.candidate = false;
      const rows = Int32Array.from([...this.tokens.slice(a + keep, b), ...tail]);
      if (rows.length > 0) {
        await this.step(chunk.seq, { tokens: rows, candidateLast: !opts.noLogits, positions: range(keep, rows.length), logitRows: NONE }, opts.signal);
      }
      chunk.own = b - a;
      chunk.candidate = !opts.noLogits;
      fed(b);
    }
    return opts.noLogits ? new Float32Array(0) : this.localPass(plan, opts.allLogits ?? false, opts.signal);
  }

  /** The C candidates at 0..C−1 and bos(local window) ‖ generated tokens after them; nothing is kept. */
  private async localPass(plan: FocusPlan, allLogits: boolean, signal?: AbortSignal): Promise<Float32Array> {
    const seq = this.ctx.seq;
    try {
      for (const c of this.chunks) seq.importRows(c.seq, Int32Array.of(c.seq.length - 1));
      const C = this.chunks.length;
      const rows = Int32Array.from([...(plan.localBos ? [this.opts.settings.bosId] : []), ...this.tokens.slice(plan.localStart)]);
      const logitRows = allLogits ? range(0, rows.length) : Int32Array.of(rows.length - 1);
      return await this.step(seq, { tokens: rows, positions: range(C, rows.length), logitRows }, signal);
    } finally {
      seq.retain(NONE);
    }
  }

  /** Generated tokens, one step each: every chunk gets [previous token, t] (t the candidate), then the local pass. */
  private async decode(tokens: Int32Array, opts: FeedOptions, report: (done: number) => void): Promise<Float32Array> {
    const plan = this.plan!;
    const parts: Float32Array[] = [];
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      this.checkPositions(plan, this.generated + 1);
      let logits: Float32Array;
      if (!plan.chunked) {
        const seq = this.ctx.seq;
        logits = await this.step(seq, { tokens: Int32Array.of(t), positions: Int32Array.of(seq.length), logitRows: Int32Array.of(0) }, opts.signal);
        this.tokens.push(t);
      } else {
        // The previous token was the chunks' candidate; it is run again as an ordinary row.
        const previous = this.tokens[this.tokens.length - 1];
        this.plan = null; // until every chunk has the new rows
        for (const c of this.chunks) {
          const R = c.seq.length - 1;
          c.seq.retain(range(0, R));
          await this.step(c.seq, { tokens: Int32Array.of(previous, t), candidateLast: true, positions: range(R, 2), logitRows: NONE }, opts.signal);
        }
        this.tokens.push(t);
        this.plan = plan;
        logits = await this.localPass(plan, false, opts.signal);
      }
      this.generated++;
      parts.push(logits);
      report(i + 1);
    }
    return opts.allLogits ? concatLogits(parts) : parts[parts.length - 1];
  }

  /** A causal step on `seq` at the given positions; with candidateLast, the last row is the candidate. */
  private step(
    seq: Sequence,
    r: { tokens: Int32Array; positions: Int32Array; logitRows: Int32Array; candidateLast?: boolean },
    signal?: AbortSignal,
  ): Promise<Float32Array> {
    const n = r.tokens.length;
    const beacon = r.candidateLast ? new Uint8Array(n).fill(1, n - 1) : undefined;
    return runStep(
      { ...this.ctx, seq },
      {
        tokens: r.tokens,
        positions: r.positions,
        mask: { kind: 'causal' },
        logitRows: r.logitRows,
        rope: this.ctx.rope(r.positions[n - 1] + 1),
        ...(beacon ? { beacon, beaconEmbedding: new Uint8Array(n) } : {}),
      },
      signal,
    );
  }

  private dropChunks(): void {
    for (const c of this.chunks) c.seq.dispose();
    this.chunks = [];
  }

  stats(): MemoryStats {
    const chunkRaw = this.chunks.map((c) => c.seq.length - (c.candidate ? 1 : 0));
    const held = this.sequences().reduce((sum, q) => sum + q.length, 0);
    return {
      totalRows: held,
      consumed: this.tokens.length,
      candidate_kv: this.chunks.filter((c) => c.candidate).length,
      chunk_raw_kv: chunkRaw,
      chunk_raw_kv_total: chunkRaw.reduce((sum, r) => sum + r, 0),
    };
  }

  saveState(): StrategyState {
    return {
      tokens: this.tokens.slice(),
      promptLength: this.plan ? this.plan.n : -1,
      generated: this.generated,
      plainRows: this.ctx.seq.length,
      chunks: this.chunks.map((c) => ({ start: c.start, own: c.own, candidate: c.candidate, rows: c.seq.length })),
    };
  }

  /** Restores the token bookkeeping; the rows follow in storage.restore, split by `chunks[].rows`. */
  loadState(s: StrategyState): void {
    this.tokens = (s.tokens as number[]).slice();
    const promptLength = Number(s.promptLength);
    this.plan = promptLength >= 0 ? planFocus(this.tokens.slice(0, promptLength), this.opts.settings) : null;
    this.generated = Number(s.generated);
    this.dropChunks();
    this.restoring = { plain: Number(s.plainRows), chunks: s.chunks as Array<Omit<Chunk, 'seq'> & { rows: number }> };
  }

  private restoreRows(s: SequenceSnapshot): void {
    const layout = this.restoring;
    if (!layout) throw new Error('focus: rows restored before the strategy state');
    this.restoring = null;
    const parts = splitSnapshot(s, [layout.plain, ...layout.chunks.map((c) => c.rows)], this.ctx.config.headDim);
    this.ctx.seq.restore(parts[0]);
    this.chunks = layout.chunks.map((c, i) => {
      const seq = this.ctx.newSequence();
      seq.restore(parts[i + 1]);
      return { seq, start: c.start, own: c.own, candidate: c.candidate };
    });
  }
}

/**
 * Several sequences' snapshots as one: per layer and KV head, each part's rows [rows, D] one after
 * another (no TokenSelect caches: focus never selects; every part has the first part's dtype).
 */
function joinSnapshots(parts: SequenceSnapshot[], D: number): SequenceSnapshot {
  const rows = parts.reduce((n, p) => n + p.rows, 0);
  const join = (pick: (p: SequenceSnapshot) => KvRows[][], l: number, h: number) => {
    const out = parts[0].kvDtype === 'f16' ? new Uint16Array(rows * D) : new Float32Array(rows * D);
    let at = 0;
    for (const p of parts) {
      out.set(pick(p)[l][h].subarray(0, p.rows * D) as never, at * D);
      at += p.rows;
    }
    return out;
  };
  const heads = parts[0].keys.map((layer) => layer.length);
  return {
    rows,
    kvDtype: parts[0].kvDtype,
    keys: heads.map((H, l) => Array.from({ length: H }, (_, h) => join((p) => p.keys, l, h))),
    values: heads.map((H, l) => Array.from({ length: H }, (_, h) => join((p) => p.values, l, h))),
    selectCache: heads.map(() => null),
  };
}

/** The inverse of joinSnapshots, given each part's rows. */
function splitSnapshot(s: SequenceSnapshot, rows: number[], D: number): SequenceSnapshot[] {
  if (rows.reduce((n, r) => n + r, 0) !== s.rows) throw new Error(`focus: the saved rows (${s.rows}) do not match its chunks (${rows.join(' + ')})`);
  let at = 0;
  return rows.map((r) => {
    const cut = (a: KvRows) => a.slice(at * D, (at + r) * D);
    const part: SequenceSnapshot = { rows: r, kvDtype: s.kvDtype, keys: s.keys.map((l) => l.map(cut)), values: s.values.map((l) => l.map(cut)), selectCache: s.keys.map(() => null) };
    at += r;
    return part;
  });
}
