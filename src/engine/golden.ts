// Golden cases (../shared/golden and ../shared/golden-seeds, README in each): a model folder, a
// prompt, and the logits and greedy ids the papers' reference code produced. loadGoldenCase reads
// and checks case.json for every kind those folders hold; runGoldenCase runs the kinds the engine
// supports: it feeds the prompt in one call (the strategy splits it into windows as the reference
// does), then decodes greedily one token per call, and compares every recorded logit, the greedy
// ids, the beacon memory sizes and the ratio. A kind the engine does not run yet is reported by
// unsupportedReason (the caller prints it and counts it apart), never run half-way.

import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendName, BackendOptions } from '../backend/contract.js';
import { createBackend } from '../backend/index.js';
import { openModel, type Model } from '../model/model.js';
import { SafetensorsFile, toFloat32 } from '../model/safetensors.js';
import { clexRope } from './rope.js';
import { Session } from './session.js';
import { planFocus } from './strategies/focus-plan.js';
import { resolveStrategy } from './strategies/index.js';

/** Every kind the golden folders hold (case.json "kind"). */
export const GOLDEN_KINDS = ['plain', 'beacon_v3_interleave', 'beacon_v1_append_step_expansion', 'softplus', 'focusllm', 'clex'] as const;
export type GoldenKind = (typeof GOLDEN_KINDS)[number];

/** The kinds runGoldenCase runs today. */
export const SUPPORTED_GOLDEN_KINDS: readonly string[] = ['plain', 'beacon_v3_interleave', 'beacon_v1_append_step_expansion', 'focusllm', 'clex', 'softplus'];

/** CLEX case settings: the model's rope_scaling and the scale factor the reference used per call. */
export interface ClexCaseSettings {
  rope_scaling: { type: 'clex'; factor: number; max_factor: number; param_factor: number; time_dt: number; act: 'tanh' | 'silu' };
  max_position_embeddings: number;
  rope_theta: number;
  head_dim: number;
  log_scale: boolean;
  /** Which attention path the reference ran (prose). */
  attention: string;
  scale_factor_prefill: number;
  /** One per decode call. */
  scale_factor_steps: number[];
}

/** Softplus case settings: the four config keys plus the variant and head dimension. */
export interface SoftplusCaseSettings {
  variant: 'LSSA' | 'LSSAR';
  head_dim: number;
  attention_type: 'softplus';
  softplus_scale: string;
  softplus_qk_norm: boolean;
  softplus_reweight: { p: number; offset: number; no_offset_first_rows: number } | null;
}

/** FocusLLM case settings (the model's config values and the official code's constants). */
export interface FocusCaseSettings {
  local_window: number;
  memory_stride: number[];
  beacon_param: string[];
  max_position_embeddings: number;
  short_prompt_limit: number;
  tail_cap: number;
  bos_id_prepended: number;
}

/** The chunk plan FocusLLM's reference used (golden-seeds README, "FocusLLM"). */
export interface FocusRecord {
  chunked: boolean;
  n_context: number;
  chunk_number: number;
  /** [start, end) of each chunk in input_ids. */
  chunks: Array<[number, number]>;
  tail_len: number;
  tail_start: number;
  tail_bos_prepended: boolean;
  local_start: number;
  local_bos_prepended: boolean;
  /** Rows of the prefill's local pass (BOS included) = rows of prefill_logits. */
  prefill_rows: number;
  chunk_pass_lengths_prefill: number[];
}

export interface GoldenCase {
  name: string;
  kind: GoldenKind | string;
  reference?: string;
  model: string;
  n_input: number;
  input_ids: number[];
  greedy_steps: number;
  expected_greedy_ids: number[];
  /** Beacon settings, the softplus / CLEX / FocusLLM settings of those kinds, null for plain. */
  settings?: Record<string, unknown> | null;
  focus?: FocusRecord;
  softplus_stats?: Record<string, unknown>;
  chosen_ratio?: number;
  /** KV rows per layer by kind; FocusLLM lists one count per chunk (chunk_raw_kv). */
  memory_after_prefill?: Record<string, number | number[]>;
  memory_after_generation?: Record<string, number | number[]>;
  tensors?: Record<string, string>;
  tolerance?: { suggested_atol?: number; suggested_rtol_clex_scaled_inv_freq?: number; [key: string]: unknown };
}

const isInt = (v: unknown, min = 0): v is number => typeof v === 'number' && Number.isInteger(v) && v >= min;
const isIntList = (v: unknown, min = 0): v is number[] => Array.isArray(v) && v.every((x) => isInt(x, min));

/**
 * Reads caseDir/case.json and checks what the runner and the kind-specific checks rely on. Throws
 * an Error naming the file and the first field that is missing or malformed.
 */
export function loadGoldenCase(caseDir: string): GoldenCase {
  const path = join(caseDir, 'case.json');
  let gc: GoldenCase;
  try {
    gc = JSON.parse(readFileSync(path, 'utf8')) as GoldenCase;
  } catch (e) {
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  const bad = (what: string): never => {
    throw new Error(`${path}: ${what}`);
  };
  if (!gc || typeof gc !== 'object') bad('not a JSON object');
  if (typeof gc.name !== 'string' || !gc.name) bad('no "name"');
  if (typeof gc.kind !== 'string' || !gc.kind) bad('no "kind"');
  if (typeof gc.model !== 'string' || !gc.model) bad('no "model" folder');
  if (!isIntList(gc.input_ids) || gc.input_ids.length === 0) bad('"input_ids" must be a non-empty list of token ids');
  // ../shared/golden's older cases may lack n_input; it is the prompt length.
  if (gc.n_input === undefined) gc.n_input = gc.input_ids.length;
  if (gc.n_input !== gc.input_ids.length) bad(`"n_input" ${gc.n_input} differs from the ${gc.input_ids.length} input_ids`);
  if (!isInt(gc.greedy_steps)) bad('"greedy_steps" must be a count');
  if (!isIntList(gc.expected_greedy_ids) || gc.expected_greedy_ids.length !== gc.greedy_steps) {
    bad(`"expected_greedy_ids" must list greedy_steps (${gc.greedy_steps}) token ids`);
  }
  const atol = gc.tolerance?.suggested_atol;
  if (atol !== undefined && !(typeof atol === 'number' && atol > 0)) bad('"tolerance.suggested_atol" must be a positive number');
  const s = (gc.settings ?? {}) as Record<string, unknown>;
  if (gc.kind === 'clex') {
    const cs = s as unknown as ClexCaseSettings;
    const rs = cs.rope_scaling;
    if (!rs || rs.type !== 'clex' || !isInt(rs.max_factor, 1) || !isInt(rs.param_factor, 1) || !(rs.time_dt > 0) || (rs.act !== 'tanh' && rs.act !== 'silu')) {
      bad('"settings.rope_scaling" must be a clex scaling with max_factor, param_factor, time_dt and act');
    }
    if (!isInt(cs.max_position_embeddings, 1) || !isInt(cs.head_dim, 2)) bad('"settings" needs max_position_embeddings and head_dim');
    if (typeof cs.log_scale !== 'boolean') bad('"settings.log_scale" must be true or false');
    if (!isInt(cs.scale_factor_prefill, 1) || !isIntList(cs.scale_factor_steps, 1) || cs.scale_factor_steps.length !== gc.greedy_steps) {
      bad('"settings" needs scale_factor_prefill and one scale_factor_steps entry per decode call');
    }
    const rtol = gc.tolerance?.suggested_rtol_clex_scaled_inv_freq;
    if (!(typeof rtol === 'number' && rtol > 0)) bad('"tolerance.suggested_rtol_clex_scaled_inv_freq" must be a positive number');
  } else if (gc.kind === 'softplus') {
    const ss = s as unknown as SoftplusCaseSettings;
    if (ss.attention_type !== 'softplus' || typeof ss.softplus_scale !== 'string' || typeof ss.softplus_qk_norm !== 'boolean') {
      bad('"settings" needs attention_type "softplus", softplus_scale and softplus_qk_norm');
    }
    const rw = ss.softplus_reweight;
    if (rw !== null && !(rw && isInt(rw.p, 1) && typeof rw.offset === 'number' && isInt(rw.no_offset_first_rows))) {
      bad('"settings.softplus_reweight" must be null or {p, offset, no_offset_first_rows}');
    }
    if ((rw === null) !== (ss.variant === 'LSSA')) bad(`"settings.variant" ${ss.variant} disagrees with softplus_reweight`);
  } else if (gc.kind === 'focusllm') {
    const fs = s as unknown as FocusCaseSettings;
    if (!isInt(fs.local_window, 1) || !isIntList(fs.memory_stride, 1) || fs.memory_stride.length !== 1) {
      bad('"settings" needs local_window and memory_stride holding exactly one stride');
    }
    if (!isInt(fs.short_prompt_limit, 1) || !isInt(fs.tail_cap, 1) || !isInt(fs.bos_id_prepended)) {
      bad('"settings" needs short_prompt_limit, tail_cap and bos_id_prepended');
    }
    const f = gc.focus as FocusRecord;
    if (!f || typeof f.chunked !== 'boolean' || !Array.isArray(f.chunks) || !f.chunks.every((c) => isIntList(c) && c.length === 2 && c[0] < c[1])) {
      bad('"focus" needs chunked and chunks as [start, end) pairs');
    }
    for (const k of ['n_context', 'chunk_number', 'tail_len', 'tail_start', 'local_start', 'prefill_rows'] as const) {
      if (!isInt(f[k])) bad(`"focus.${k}" must be a count`);
    }
    if (f.chunk_number !== f.chunks.length || !isIntList(f.chunk_pass_lengths_prefill) || f.chunk_pass_lengths_prefill.length !== f.chunk_number) {
      bad('"focus" chunk_number, chunks and chunk_pass_lengths_prefill disagree');
    }
  }
  return gc;
}

/**
 * Why runGoldenCase cannot run this case yet, or null. Callers report the case as "unsupported
 * kind <kind>" and count it apart from passes and failures.
 */
export function unsupportedReason(gc: GoldenCase): string | null {
  return SUPPORTED_GOLDEN_KINDS.includes(gc.kind) ? null : `unsupported kind ${gc.kind}`;
}

/** A float32 tensor of caseDir/expected.safetensors with its shape. */
export function readExpectedTensor(caseDir: string, name: string): { shape: number[]; data: Float32Array } {
  const file = SafetensorsFile.open(join(caseDir, 'expected.safetensors'));
  const info = file.tensors.get(name);
  if (!info) throw new Error(`${file.path}: no tensor "${name}"`);
  return { shape: info.shape, data: toFloat32(info, file.readBytes(name)) };
}

export interface GoldenResult {
  name: string;
  maxDiffPrefill: number;
  maxDiffSteps: number;
  greedyEqual: boolean;
  /** null when the case records no memory sizes. */
  memoryEqual: boolean | null;
  ratioEqual: boolean | null;
  /** FocusLLM: whether ctx's chunk plan is the recorded one; null for other kinds. */
  planEqual: boolean | null;
  atol: number;
  passed: boolean;
  detail: string[];
  seconds: number;
}

/** Every folder under root (recursively) that holds a case.json. */
export function findGoldenCases(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    if (existsSync(join(dir, 'case.json'))) out.push(dir);
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
    }
  };
  walk(root);
  return out;
}

function argmax(v: Float32Array, offset: number, n: number): number {
  let best = 0;
  for (let i = 1; i < n; i++) if (v[offset + i] > v[offset + best]) best = i;
  return best;
}

function maxAbsDiff(a: Float32Array, b: Float32Array, bOffset = 0): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[bOffset + i]);
    if (!(d <= m)) m = d; // NaN propagates as a failure
  }
  return m;
}

/** Golden checks are float32 checks: float32 weights, and on cpu float32 KV (its default is f16). */
export const GOLDEN_BACKEND_OPTIONS: BackendOptions = { dtype: 'f32', kvDtype: 'f32' };

export async function runGoldenCase(root: string, caseDir: string, backendName: BackendName, options: BackendOptions = GOLDEN_BACKEND_OPTIONS): Promise<GoldenResult> {
  const t0 = performance.now();
  const gc = loadGoldenCase(caseDir);
  const unsupported = unsupportedReason(gc);
  if (unsupported) throw new Error(`${gc.name}: ${unsupported}`);
  const model = openModel(join(root, gc.model));
  const V = model.config.vocabSize;
  const expected = SafetensorsFile.open(join(caseDir, 'expected.safetensors'));
  const tensor = (name: string) => toFloat32(expected.tensors.get(name)!, expected.readBytes(name));
  const prefill = tensor('prefill_logits');
  const steps = tensor('step_logits');
  const atol = gc.tolerance?.suggested_atol ?? 1e-3;
  const detail: string[] = [];

  // Softplus cases: plain decoding of a model whose config.json selects softplus attention.
  if (gc.kind === 'softplus' && !model.config.softplus) throw new Error(`${gc.name}: the model's config.json does not select softplus attention`);
  const backend = await createBackend(backendName, model, options);
  const n = gc.input_ids.length;
  // CLEX: `full` on the model's own CLEX; the prompt is one feed, so one t (CLEX.md §5), however it is chunked.
  // Softplus: plain decoding of a model whose config.json selects softplus attention.
  const strategy = gc.kind === 'plain' || gc.kind === 'clex' || gc.kind === 'softplus' ? 'full' : gc.kind === 'focusllm' ? 'focus' : 'beacon';
  const resolved = resolveStrategy(model.config, { strategy }, n);
  const clexOk = gc.kind === 'clex' ? checkClexTable(model, caseDir, gc, detail) : null;
  const session = new Session(backend, resolved);

  // FocusLLM computes logits only for its local pass: BOS and the local window (golden-seeds README).
  const rows = gc.focus ? gc.focus.prefill_rows : n;
  let planEqual: boolean | null = null;
  if (gc.focus) {
    const p = planFocus(gc.input_ids, model.config.focus!);
    const f = gc.focus;
    const got = [p.chunked, p.nContext, p.chunks, p.tailLen, p.tailStart, p.tailBos, p.localStart, p.localBos, p.prefillRows, p.chunkPassLengths];
    const want = [f.chunked, f.n_context, f.chunks, f.tail_len, f.tail_start, f.tail_bos_prepended, f.local_start, f.local_bos_prepended, f.prefill_rows, f.chunk_pass_lengths_prefill];
    planEqual = JSON.stringify(got) === JSON.stringify(want);
    if (!planEqual) detail.push(`chunk plan ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
  }
  const logits = await session.feed(Int32Array.from(gc.input_ids), { allLogits: true });
  if (logits.length !== rows * V) throw new Error(`${gc.name}: got ${logits.length / V} logit rows, expected ${rows}`);
  const maxDiffPrefill = maxAbsDiff(logits, prefill);

  let ratioEqual: boolean | null = null;
  if (gc.chosen_ratio !== undefined) {
    const got = resolved.name === 'beacon' ? resolved.ratio : -1;
    ratioEqual = got === gc.chosen_ratio;
    if (!ratioEqual) detail.push(`ratio ${got} != ${gc.chosen_ratio}`);
  }
  const memDiff = (want: Record<string, number | number[]> | undefined, label: string): boolean | null => {
    if (!want) return null;
    const got = session.stats() as Record<string, unknown>;
    const bad = Object.entries(want).filter(([k, v]) => JSON.stringify(got[k]) !== JSON.stringify(v));
    for (const [k, v] of bad) detail.push(`${label} ${k} ${JSON.stringify(got[k])} != ${JSON.stringify(v)}`);
    return bad.length === 0;
  };
  const memPrefill = memDiff(gc.memory_after_prefill, 'after prefill');

  const ids: number[] = [argmax(logits, (rows - 1) * V, V)];
  let maxDiffSteps = 0;
  for (let i = 0; i < gc.greedy_steps; i++) {
    const step = await session.feed(Int32Array.of(ids[i]), { decoding: true });
    maxDiffSteps = Math.max(maxDiffSteps, maxAbsDiff(step, steps, i * V));
    if (i + 1 < gc.greedy_steps) ids.push(argmax(step, 0, V));
  }
  const memGen = memDiff(gc.memory_after_generation, 'after generation');
  const greedyEqual = ids.length === gc.expected_greedy_ids.length && ids.every((t, i) => t === gc.expected_greedy_ids[i]);
  if (!greedyEqual) detail.push(`greedy ids differ: got ${ids.join(',')}`);
  const memoryEqual = memPrefill === null && memGen === null ? null : memPrefill !== false && memGen !== false;
  session.dispose();
  await backend.dispose();
  const passed = greedyEqual && maxDiffPrefill <= atol && maxDiffSteps <= atol && memoryEqual !== false && ratioEqual !== false && planEqual !== false && clexOk !== false;
  return {
    name: gc.name,
    maxDiffPrefill,
    maxDiffSteps,
    greedyEqual,
    memoryEqual,
    ratioEqual,
    planEqual,
    atol,
    passed,
    detail,
    seconds: (performance.now() - t0) / 1000,
  };
}

/**
 * CLEX cases: the ODE's frequencies f(t) for t = 1 … max_factor against `clex_scaled_inv_freq`
 * (relative, within the case's rtol), and the scale factor of the prefill and of every decode call
 * against `settings`. Adds what differs to `detail`; returns whether all agree.
 */
function checkClexTable(model: Model, caseDir: string, gc: GoldenCase, detail: string[]): boolean {
  const rope = clexRope(model);
  const want = readExpectedTensor(caseDir, 'clex_scaled_inv_freq');
  const half = model.config.rotaryDim / 2;
  let ok = true;
  if (want.shape[0] !== rope.table.length || want.shape[1] !== half) {
    detail.push(`clex_scaled_inv_freq is [${want.shape}], ctx's table [${rope.table.length}, ${half}]`);
    return false;
  }
  let maxRel = 0;
  rope.table.forEach((row, r) => row.forEach((v, i) => (maxRel = Math.max(maxRel, Math.abs(v - want.data[r * half + i]) / want.data[r * half + i]))));
  const rtol = gc.tolerance!.suggested_rtol_clex_scaled_inv_freq!;
  if (!(maxRel <= rtol)) {
    detail.push(`clex f(t) max relative difference ${maxRel.toExponential(2)} > ${rtol}`);
    ok = false;
  }
  const s = gc.settings as unknown as ClexCaseSettings;
  const got = [gc.n_input, ...s.scale_factor_steps.map((_, i) => gc.n_input + i + 1)].map((L) => rope.forLength(L).t);
  const expected = [s.scale_factor_prefill, ...s.scale_factor_steps];
  if (got.join() !== expected.join()) {
    detail.push(`clex scale factors ${got.join(',')} != ${expected.join(',')}`);
    ok = false;
  }
  return ok;
}

export function formatGoldenResult(r: GoldenResult): string {
  const mem = r.memoryEqual === null ? 'memory n/a' : r.memoryEqual ? 'memory equal' : 'memory DIFFERS';
  const ratio = r.ratioEqual === null ? '' : r.ratioEqual ? ', ratio equal' : ', ratio DIFFERS';
  const plan = r.planEqual === null ? '' : r.planEqual ? ', chunk plan equal' : ', chunk plan DIFFERS';
  return `${r.passed ? 'PASS' : 'FAIL'}  ${r.name}  max|Δlogit| prefill ${r.maxDiffPrefill.toExponential(2)} steps ${r.maxDiffSteps.toExponential(2)}  greedy ${r.greedyEqual ? 'equal' : 'DIFFER'}, ${mem}${ratio}${plan}  (${r.seconds.toFixed(2)} s)${r.detail.length ? `\n      ${r.detail.join('\n      ')}` : ''}`;
}
