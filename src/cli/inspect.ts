// `ctx inspect <inputs…>`: the plan of a run before any model runs. It reads the inputs exactly as
// `ask` would — with the citation markers ask and summarize add, unless --no-cite — and prints each
// source (pages, bytes, tokens), every skipped file with its reason, the total, and — with a model —
// the strategy and why, the model's native window and the KV rows and bytes the run will hold,
// planned by the engine's own planPrompt (so the numbers are ask's). `--json` prints the same as one
// object.
//
// Without a model there is no tokenizer and no window: inspect still shows the sources, and a token
// estimate (characters / 4) that says it is one.

import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { nativeAvailable, probeDevices } from '../backend/native/index.js';
import { pdfTextDir } from '../cache/store.js';
import { SourceMarking } from '../engine/citations/source-marking.js';
import { markersOffReason } from '../engine/citations/markers.js';
import type { RunPlan } from '../engine/plan.js';
import { promptFormat } from '../engine/prompt-format.js';
import { planPrompt } from '../engine/prompt-plan.js';
import type { StrategyName } from '../engine/strategies/index.js';
import { EXIT } from '../errors.js';
import { counted } from '../ui/format.js';
import { formatBytes } from '../units.js';
import type { Document, Segment } from '../input/document.js';
import { PdfTextCache } from '../input/pdf-text-cache.js';
import { openInputs, type Inputs } from '../input/read.js';
import type { ModelConfig } from '../model/config.js';
import { loadModelConfig } from '../model/model.js';
import { ctxCacheDir } from '../model/paths.js';
import { DEFAULT_MODEL } from '../model/registry.js';
import { resolveModelDir } from '../model/resolve.js';
import { loadTokenizer, type TextTokenizer } from '../model/tokenizer.js';
import { promptFormatChoice } from './engine-options.js';
import { documentInputs, guardedStdin, usageWhenNothingToRead, formatCount, formatTable, out, type RunContext } from './io.js';
import { citeOption, followLinksOption, kvDtypeOption, maxFileBytesOption, modelOption, stdinWaitOption, strategyOption, systemOption } from './options.js';

/** Characters per token for the estimate: about right for English prose and code with BPE tokenizers. */
export const CHARS_PER_TOKEN = 4;

interface InspectOptions {
  devices?: boolean;
  model?: string;
  strategy: StrategyName | 'auto';
  kvDtype?: string;
  /** Count the citation markers ask and summarize add (--no-cite: as chat reads it, or ask --no-cite). */
  cite: boolean;
  system?: string;
  template?: string;
  raw?: boolean;
  maxTokens: number;
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
    .addOption(kvDtypeOption())
    .addOption(citeOption())
    .addOption(systemOption())
    .option('--template <name|file>', 'plan with this chat template instead of the model\'s (as ask --template)')
    .option('--raw', 'plan for a plain prompt (as ask --raw)')
    .addOption(new Option('--max-tokens <n>', 'the answer reserve to plan for (as ask --max-tokens)').argParser(positiveInt).default(512))
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
  /**
   * The document's tokens as ask reads it: `markers` are the citation markers included in `total`
   * (null with --no-cite or where there are none); their `tokens` are measured encoded together
   * (null without a tokenizer).
   */
  tokens: {
    total: number;
    method: 'tokenizer' | 'estimate';
    charsPerToken?: number;
    markers: { count: number; tokens: number | null; forms: string } | null;
  };
  model: { name: string; dir: string; nativeWindow: number } | null;
  /** With a model: what the plan assumes after the document (the question is not known to inspect). */
  plan: (RunPlan & { questionTokens: number; kvDtype: 'f16' | 'f32' }) | null;
}

function positiveInt(text: string): number {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError('expected an integer ≥ 1');
  return v;
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
  // Streamed: text and ids are counted as they pass, so inspecting a document of any length takes
  // the memory of the pieces in flight. With citation markers (the default, as ask reads it) the
  // inputs are read twice, as ask reads them: once to learn how to mark them, once marked.
  const read = await openInputs(specs, {
    maxFileBytes: opts.maxFileBytes,
    followLinks: opts.followLinks,
    stdin: guardedStdin(specs, run, opts.stdinWait),
    pipeWaitMs: opts.stdinWait * 1000,
    // Read once without markers: nothing to hold or spool for a second reading.
    holdChars: opts.cite ? undefined : 0,
    spoolDir: opts.cite ? () => join(ctxCacheDir(run.env), 'spool') : undefined,
    signal: run.signal,
    warn: opts.quiet ? undefined : (m) => run.stderr.write(`ctx: warning: ${m}\n`),
    pdfTextCache: new PdfTextCache(pdfTextDir(run.env)),
  });
  try {
    await inspectInputs(run, read, model, opts);
  } finally {
    await read.close();
  }
}

async function inspectInputs(run: RunContext, read: Inputs, model: { name: string; dir: string; config: ModelConfig } | null, opts: InspectOptions): Promise<void> {
  // The document as ask and summarize read it: with their citation markers unless --no-cite, or unless
  // the model's vocabulary cannot write them (ask turns them off then, with a plan note).
  const tokenizer = model ? await loadTokenizer(model.dir, { eosIds: model.config.eosTokenIds }) : null;
  const off = opts.cite && tokenizer ? markersOffReason(tokenizer) : null;
  const sources = new SourceMarking(opts.cite && !off, off);
  let segments: AsyncIterable<Segment> = read.segments();
  if (sources.enabled) {
    for await (const s of segments) sources.see(s);
    sources.surveyed(read.sources);
    segments = read.segments();
  }
  const marked = sources.marked(segments, tokenizer ?? undefined);
  const tokens = tokenizer ? await countTokens(marked, tokenizer, run.signal) : await estimateTokens(marked);
  const doc = { sources: read.sources, skipped: read.skipped };
  const cost = sources.cost;
  const markers = sources.kinds && cost && cost.count > 0 ? { count: cost.count, tokens: cost.tokens, forms: markerForms(sources.kinds) } : null;
  let plan: InspectReport['plan'] = null;
  if (model && tokenizer) {
    // Planned as ask plans, for a question inspect does not know (an allowance, as chat plans).
    const format = promptFormat(tokenizer, promptFormatChoice(opts));
    // KV bytes as the default backend (cpu) stores them: f16 unless --kv-dtype f32.
    const kvDtype = opts.kvDtype === 'f32' ? 'f32' : 'f16';
    const planned = planPrompt({ config: model.config, tokenizer, kvBytesPerValue: kvDtype === 'f32' ? 4 : 2 }, format, opts.system, tokens.total, null, {
      strategy: { strategy: opts.strategy },
      maxTokens: opts.maxTokens,
    });
    plan = { ...planned.plan, notes: [...sources.notes(), ...planned.plan.notes], questionTokens: planned.questionTokens, kvDtype };
  }

  const report = buildReport(doc, { ...tokens, markers }, model, plan);
  if (opts.json) out(run, JSON.stringify(report, null, 2));
  else for (const line of renderText(report)) out(run, line);
  // A plan that does not fit is the answer to "will this work?", so scripts get it as the exit code.
  if (plan && !plan.fits) run.exitCode = EXIT.doesNotFit;
}

/** Exact counts with the model's tokenizer, segment by segment as they stream (as the engine encodes them: document-tokens.ts). */
async function countTokens(segments: AsyncIterable<Segment> | Iterable<Segment>, tokenizer: TextTokenizer, signal: AbortSignal): Promise<TokenCount> {
  const perSource = new Map<string, number>();
  let total = 0;
  for await (const { segment, ids } of tokenizer.encodeSegmentStream(segments, { signal })) {
    perSource.set(segment.source.path, (perSource.get(segment.source.path) ?? 0) + ids.length);
    total += ids.length;
  }
  return { method: 'tokenizer', total, perSource };
}

/** Characters / CHARS_PER_TOKEN per source; labelled an estimate wherever it is shown. */
export async function estimateTokens(segments: AsyncIterable<Segment> | Iterable<Segment>): Promise<TokenCount> {
  const chars = new Map<string, number>();
  for await (const seg of segments) chars.set(seg.source.path, (chars.get(seg.source.path) ?? 0) + seg.text.length);
  const perSource = new Map<string, number>();
  let total = 0;
  for (const [path, n] of chars) {
    const t = Math.ceil(n / CHARS_PER_TOKEN);
    perSource.set(path, t);
    total += t;
  }
  return { method: 'estimate', total, perSource };
}

/** "[p. N]", "[line N]", "[file:line]"…: the forms the markers take. */
function markerForms(kinds: NonNullable<SourceMarking['kinds']>): string {
  const forms: string[] = [];
  if (kinds.pages) forms.push(kinds.namedPages ? '[file p. N]' : '[p. N]');
  if (kinds.lines) forms.push(kinds.namedLines ? '[file:line]' : '[line N]');
  return forms.join(', ');
}

export function buildReport(
  doc: Pick<Document, 'sources' | 'skipped'>,
  tokens: TokenCount & { markers: InspectReport['tokens']['markers'] },
  model: { name: string; dir: string; config: ModelConfig } | null,
  plan: InspectReport['plan'],
): InspectReport {
  return {
    sources: doc.sources.map((s) => ({ ...s, tokens: tokens.perSource.get(s.path) ?? 0 })),
    skipped: doc.skipped,
    tokens: {
      total: tokens.total,
      method: tokens.method,
      ...(tokens.method === 'estimate' ? { charsPerToken: CHARS_PER_TOKEN } : {}),
      markers: tokens.markers,
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
  const m = r.tokens.markers;
  if (m) {
    const cost = m.tokens === null ? '' : `, about ${counted(m.tokens, 'token')}`;
    lines.push(`  including ${counted(m.count, 'citation marker')} (${m.forms}${cost}) that ask and summarize add; --no-cite counts without them`);
  } else {
    lines.push('  no citation markers (--no-cite, or the sources have no pages or lines to cite)');
  }

  if (!r.plan || !r.model) {
    lines.push('Plan: needs a model (-m <model>) to know its window and the memory a run holds');
    return lines;
  }
  const p = r.plan;
  lines.push('', `Plan for ${r.model.name}`);
  const answer = p.plannedTokens - p.prefixTokens - p.documentTokens - p.questionTokens;
  const planRows = [
    ['native window', `${formatCount(p.nativeWindow)} tokens`],
    ['strategy', p.strategyReason ? `${p.description}, auto: ${p.strategyReason}` : p.description],
    [
      'planned tokens',
      `${formatCount(p.plannedTokens)} = prefix ${formatCount(p.prefixTokens)} (template, BOS, system) + document ${formatCount(p.documentTokens)} + question ≤ ${formatCount(p.questionTokens)} (assumed) + answer ${formatCount(answer)} (--max-tokens)`,
    ],
    ['KV rows held', formatCount(p.kvRows)],
    ['KV memory', `${formatBytes(p.kvBytes)} (${p.kvDtype === 'f32' ? 'float32' : 'f16'}, as the cpu backend stores it)`],
    ['fits', p.fits ? 'yes' : `no: ${p.reason}`],
  ];
  for (const line of formatTable(planRows)) lines.push(`  ${line}`);
  for (const note of p.notes) lines.push(`  note: ${note}`);
  return lines;
}
