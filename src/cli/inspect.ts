// `ctx inspect <inputs…>`: the plan of a run before any model runs. It reads the inputs exactly as
// `ask` would and prints each source (pages, bytes, tokens), every skipped file with its reason,
// the total, and — with a model — the strategy, the model's native window and the KV rows and bytes
// the run will hold. `--json` prints the same as one object.
//
// Without a model there is no tokenizer and no window: inspect still shows the sources, and a token
// estimate (characters / 4) that says it is one.

import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import { Command } from 'commander';
import { nativeAvailable, probeDevices } from '../backend/native/index.js';
import { planRun, type RunPlan } from '../engine/plan.js';
import type { StrategyName } from '../engine/strategies/index.js';
import { EXIT } from '../errors.js';
import { counted } from '../ui/format.js';
import { formatBytes } from '../units.js';
import type { Document } from '../input/document.js';
import { readInputs } from '../input/read.js';
import type { ModelConfig } from '../model/config.js';
import { loadModelConfig } from '../model/model.js';
import { DEFAULT_MODEL } from '../model/registry.js';
import { resolveModelDir } from '../model/resolve.js';
import { loadTokenizer } from '../model/tokenizer.js';
import { documentInputs, guardedStdin, usageWhenNothingToRead, formatCount, formatTable, out, type RunContext } from './io.js';
import { followLinksOption, maxFileBytesOption, modelOption, stdinWaitOption, strategyOption } from './options.js';

/** Characters per token for the estimate: about right for English prose and code with BPE tokenizers. */
export const CHARS_PER_TOKEN = 4;

interface InspectOptions {
  devices?: boolean;
  model?: string;
  strategy: StrategyName | 'auto';
  maxFileBytes: number;
  followLinks?: boolean;
  stdinWait: number;
  json?: boolean;
  quiet?: boolean;
}

export function inspectCommand(run: RunContext): Command {
  return new Command('inspect')
    .description('show what ctx would read (sources, skipped files, tokens) and the memory plan, without running a model')
    .argument('[inputs...]', 'files, folders, globs, or - for stdin (with none named, piped input is read)')
    .addOption(modelOption())
    .addOption(strategyOption())
    .addOption(maxFileBytesOption())
    .addOption(followLinksOption())
    .addOption(stdinWaitOption())
    .option('--devices', 'show the backends ctx can use here: GPUs (name, memory, compute capability, driver) or why there is none')
    .action(async (inputs: string[], _opts: unknown, cmd: Command) => {
      const opts = cmd.optsWithGlobals<InspectOptions>();
      if (opts.devices) {
        devices(run, opts);
        if (inputs.length === 0) return;
      }
      usageWhenNothingToRead(cmd, inputs, run);
      await inspect(run, inputs, opts);
    });
}

/** `--devices`: the cpu backend is always there; the cuda backend needs the native addon and a GPU. */
function devices(run: RunContext, opts: InspectOptions): void {
  const probe = probeDevices();
  const native = nativeAvailable();
  if (opts.json) {
    out(run, JSON.stringify({ cpu: { threads: availableParallelism() }, native, cuda: probe }, null, 2));
    return;
  }
  out(run, `cpu     onnxruntime on ${availableParallelism()} threads (the default backend)`);
  out(run, `native  ${native.available ? 'addon loaded' : `unavailable: ${native.reason}`}`);
  if (!probe.available) out(run, `cuda    no usable GPU: ${probe.reason}`);
  for (const d of probe.devices) {
    out(run, `cuda    ${d.name}, ${formatBytes(d.memoryBytes)}, compute capability ${d.computeCapability}, driver ${d.driver} (opt in with --backend cuda)`);
  }
}

/** Token counts per source path, and how they were obtained. */
export interface TokenCount {
  method: 'tokenizer' | 'estimate';
  total: number;
  perSource: Map<string, number>;
}

export interface InspectReport {
  sources: Array<{ path: string; kind: string; bytes: number; pages?: number; encoding?: string; tokens: number }>;
  skipped: Array<{ path: string; reason: string }>;
  tokens: { total: number; method: 'tokenizer' | 'estimate'; charsPerToken?: number };
  model: { name: string; dir: string; nativeWindow: number } | null;
  plan: RunPlan | null;
}

async function inspect(run: RunContext, inputs: string[], opts: InspectOptions): Promise<void> {
  const { specs } = documentInputs(inputs, run);
  // The model's folder and config first: a wrong -m should fail before a long document is read.
  let model: { name: string; dir: string; config: ModelConfig } | null = null;
  if (opts.model) {
    // A registry name or a folder; inspect never downloads (a missing model says how to pull it).
    const dir = await resolveModelDir(opts.model, { env: run.env });
    model = { name: opts.model, dir, config: await loadModelConfig(dir) };
  } else {
    // Without -m: the default model's plan when it is downloaded already, else an estimate.
    const dir = await resolveModelDir(DEFAULT_MODEL, { env: run.env }).catch(() => null);
    if (dir) model = { name: DEFAULT_MODEL, dir, config: await loadModelConfig(dir) };
  }
  const doc = await readInputs(specs, {
    maxFileBytes: opts.maxFileBytes,
    followLinks: opts.followLinks,
    stdin: guardedStdin(specs, run, opts.stdinWait),
    signal: run.signal,
    warn: opts.quiet ? undefined : (m) => run.stderr.write(`ctx: warning: ${m}\n`),
  });
  const tokens = model ? await countTokens(doc, model.dir, run.signal) : estimateTokens(doc);
  const plan = model ? planRun(model.config, { documentTokens: tokens.total, strategy: opts.strategy }) : null;

  const report = buildReport(doc, tokens, model, plan);
  if (opts.json) out(run, JSON.stringify(report, null, 2));
  else for (const line of renderText(report)) out(run, line);
  // A plan that does not fit is the answer to "will this work?", so scripts get it as the exit code.
  if (plan && !plan.fits) run.exitCode = EXIT.doesNotFit;
}

/** Exact counts with the model's tokenizer, segment by segment (as the engine will encode them). */
async function countTokens(doc: Document, modelDir: string, signal: AbortSignal): Promise<TokenCount> {
  const tokenizer = await loadTokenizer(modelDir);
  const { ids, segmentStarts } = await tokenizer.encodeSegments(doc.segments, { signal });
  const perSource = new Map<string, number>();
  doc.segments.forEach((seg, i) => {
    const end = i + 1 < segmentStarts.length ? segmentStarts[i + 1]! : ids.length;
    const n = end - segmentStarts[i]!;
    perSource.set(seg.source.path, (perSource.get(seg.source.path) ?? 0) + n);
  });
  return { method: 'tokenizer', total: ids.length, perSource };
}

/** Characters / CHARS_PER_TOKEN per source; labelled an estimate wherever it is shown. */
export function estimateTokens(doc: Document): TokenCount {
  const chars = new Map<string, number>();
  for (const seg of doc.segments) chars.set(seg.source.path, (chars.get(seg.source.path) ?? 0) + seg.text.length);
  const perSource = new Map<string, number>();
  let total = 0;
  for (const [path, n] of chars) {
    const t = Math.ceil(n / CHARS_PER_TOKEN);
    perSource.set(path, t);
    total += t;
  }
  return { method: 'estimate', total, perSource };
}

export function buildReport(
  doc: Document,
  tokens: TokenCount,
  model: { name: string; dir: string; config: ModelConfig } | null,
  plan: RunPlan | null,
): InspectReport {
  return {
    sources: doc.sources.map((s) => ({ ...s, tokens: tokens.perSource.get(s.path) ?? 0 })),
    skipped: doc.skipped,
    tokens: {
      total: tokens.total,
      method: tokens.method,
      ...(tokens.method === 'estimate' ? { charsPerToken: CHARS_PER_TOKEN } : {}),
    },
    model: model ? { name: basename(model.name), dir: model.dir, nativeWindow: model.config.maxPositions } : null,
    plan,
  };
}

export function renderText(r: InspectReport): string[] {
  const approx = r.tokens.method === 'estimate' ? '~' : '';
  const lines: string[] = [];

  lines.push(`Sources (${r.sources.length})`);
  const rows = r.sources.map((s) => [
    s.path === '-' ? '- (stdin)' : s.path,
    s.kind,
    s.pages === undefined ? '' : `${s.pages} p.`,
    formatBytes(s.bytes),
    `${approx}${counted(s.tokens, 'token')}`,
  ]);
  for (const line of formatTable(rows, [false, false, true, true, true])) lines.push(`  ${line}`);

  if (r.skipped.length) {
    lines.push('', `Skipped (${r.skipped.length})`);
    for (const line of formatTable(r.skipped.map((s) => [s.path, s.reason]))) lines.push(`  ${line}`);
  }

  lines.push('');
  if (r.tokens.method === 'estimate') {
    lines.push(
      `Total: ~${formatCount(r.tokens.total)} tokens (estimate: ${r.tokens.charsPerToken} characters per token; -m <model> counts exactly)`,
    );
  } else {
    lines.push(`Total: ${counted(r.tokens.total, 'token')} (${r.model!.name} tokenizer)`);
  }

  if (!r.plan || !r.model) {
    lines.push('Plan: needs a model (-m <model>) to know its window and the memory a run holds');
    return lines;
  }
  const p = r.plan;
  lines.push('', `Plan for ${r.model.name}`);
  const planRows = [
    ['native window', `${formatCount(p.nativeWindow)} tokens`],
    ['strategy', p.description],
    ['planned tokens', `${formatCount(p.plannedTokens)} (document ${formatCount(p.documentTokens)} + answer reserve)`],
    ['KV rows held', formatCount(p.kvRows)],
    ['KV memory', `${formatBytes(p.kvBytes)} (float32)`],
    ['fits', p.fits ? 'yes' : `no: ${p.reason}`],
  ];
  for (const line of formatTable(planRows)) lines.push(`  ${line}`);
  for (const note of p.notes) lines.push(`  note: ${note}`);
  return lines;
}
