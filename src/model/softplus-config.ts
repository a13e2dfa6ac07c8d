// Which attention-probability function a model's config asks for: softmax (every config without
// `attention_type`) or softplus attention (arXiv 2501.13428; ../shared/research/SOFTPLUS.md), and
// the run-time choice of its re-weighting. The math itself is src/backend/attention-softplus.ts.
//
// Config keys (all four optional except attention_type):
//   attention_type     "softplus" ("softmax" or absent: softmax)
//   softplus_scale     "log_head_dim_x_log_n" (the only scale defined: ln(D)·ln(n))
//   softplus_qk_norm   true (cosine similarities; false is undefined by the paper and refused)
//   softplus_reweight  null (LSSA) or {"p", "offset" = 1, "no_offset_first_rows" = 3} (LSSAR)

import { CtxError } from '../errors.js';

type Json = Record<string, unknown>;

/** The re-weighting stage (LSSAR). */
export interface SoftplusReweight {
  /** Power p (the paper: 3 best at the training length, 15 best beyond it). */
  p: number;
  /** Offset o subtracted from n·a (the paper: 1, the uniform share). */
  offset: number;
  /** Rows with n ≤ this many keys use offset 0 (the paper: 3; with offset 1 row 0 would be 0/0). */
  noOffsetFirstRows: number;
}

export interface SoftplusAttention {
  /** The only scale the paper defines: ln(head_dim)·ln(n). */
  scale: 'log_head_dim_x_log_n';
  /** null = LSSA; otherwise LSSAR. */
  reweight: SoftplusReweight | null;
}

/** The paper's offset and offset-free rows, used where a config or an override gives only p. */
export const PAPER_REWEIGHT = { offset: 1, noOffsetFirstRows: 3 } as const;

/**
 * Reads the four config keys. Returns null for softmax models (no `attention_type`, or "softmax").
 * `softplus_qk_norm: false` is refused: the paper's scale assumes cosine similarities in [−1, 1],
 * and nothing defines softplus attention on raw dot products.
 */
export function parseSoftplusAttention(cfg: Json, path: string): SoftplusAttention | null {
  const type = cfg.attention_type;
  if (type === undefined || type === null || type === 'softmax') return null;
  const bad = (what: string): never => {
    throw new CtxError('model', `config.json ${what}`, { path });
  };
  if (type !== 'softplus') bad(`"attention_type" ${JSON.stringify(type)} is not supported (ctx runs "softmax" and "softplus")`);
  const scale = 'log_head_dim_x_log_n';
  const given = cfg.softplus_scale ?? scale;
  if (given !== scale) bad(`"softplus_scale" ${JSON.stringify(given)} is not supported (ctx runs "${scale}")`);
  const qkNorm = cfg.softplus_qk_norm ?? true;
  if (qkNorm !== true) bad('"softplus_qk_norm" must be true: softplus attention is defined on cosine similarities');
  const rw = cfg.softplus_reweight;
  if (rw === undefined || rw === null) return { scale, reweight: null };
  if (typeof rw !== 'object' || Array.isArray(rw)) bad('"softplus_reweight" must be null or {"p", "offset", "no_offset_first_rows"}');
  const r = rw as Json;
  const p = r.p;
  if (typeof p !== 'number' || !(p > 0 && p <= 1000)) bad(`"softplus_reweight.p" must be a positive number, got ${JSON.stringify(p)}`);
  const offset = r.offset ?? PAPER_REWEIGHT.offset;
  if (typeof offset !== 'number' || !(offset >= 0 && Number.isFinite(offset))) bad(`"softplus_reweight.offset" must be a number ≥ 0, got ${JSON.stringify(offset)}`);
  const first = r.no_offset_first_rows ?? PAPER_REWEIGHT.noOffsetFirstRows;
  if (typeof first !== 'number' || !Number.isInteger(first) || first < 0) bad(`"softplus_reweight.no_offset_first_rows" must be a count, got ${JSON.stringify(first)}`);
  return { scale, reweight: { p: p as number, offset: offset as number, noOffsetFirstRows: first as number } };
}

/** A run-time choice of the re-weighting (`--softplus-reweight`): off (LSSA) or the power p. */
export type SoftplusReweightChoice = 'off' | number;

/** Parses `off` or a power p in (0, 1000]; null when the text is neither. */
export function parseReweightChoice(text: string): SoftplusReweightChoice | null {
  if (text === 'off') return 'off';
  const p = Number(text);
  return text.trim() !== '' && Number.isFinite(p) && p > 0 && p <= 1000 ? p : null;
}

/**
 * The model's softplus attention with its re-weighting replaced by `choice`: 'off' runs LSSA, p
 * runs LSSAR with power p and the model's own offset rule (the paper's, offset 1 after the first 3
 * rows, when the model has none). Refused for softmax models: re-weighting is defined on the l1
 * weights of softplus attention, and the paper reports it makes a softmax-trained model worse.
 */
export function withReweight(sp: SoftplusAttention | null, choice: SoftplusReweightChoice, modelName: string): SoftplusAttention {
  if (!sp) {
    throw new CtxError('usage', `--softplus-reweight applies to softplus-attention models; ${modelName} uses softmax attention (its config.json has no "attention_type": "softplus")`);
  }
  if (choice === 'off') return { ...sp, reweight: null };
  return { ...sp, reweight: { offset: sp.reweight?.offset ?? PAPER_REWEIGHT.offset, noOffsetFirstRows: sp.reweight?.noOffsetFirstRows ?? PAPER_REWEIGHT.noOffsetFirstRows, p: choice } };
}

/** "softplus attention (LSSA)" or "softplus attention (LSSAR p=15)"; null for softmax. */
export function describeSoftplus(sp: SoftplusAttention | null): string | null {
  if (!sp) return null;
  return `softplus attention (${sp.reweight ? `LSSAR p=${sp.reweight.p}` : 'LSSA'})`;
}

/** The config.json keys that select `sp` (the inverse of parseSoftplusAttention): for writing model folders. */
export function softplusConfigKeys(sp: SoftplusAttention): Record<string, unknown> {
  const rw = sp.reweight;
  return {
    attention_type: 'softplus',
    softplus_scale: sp.scale,
    softplus_qk_norm: true,
    softplus_reweight: rw ? { p: rw.p, offset: rw.offset, no_offset_first_rows: rw.noOffsetFirstRows } : null,
  };
}
