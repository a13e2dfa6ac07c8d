// `ctx models …`: the models ctx knows by name and the ones on this machine.
//
//   ctx models list            registry entries, which are downloaded, sizes (--json for scripts),
//                              and the GGUF models ollama and LM Studio hold here (-m takes their names)
//   ctx models pull NAME       download into the cache (resumable; progress on stderr)
//   ctx models rm NAME         delete a download (and any unfinished one)
//   ctx models info NAME|PATH  what a model is: architecture, size, window, beacon settings, tokenizer
//                              (a folder, a .gguf file, ollama:NAME, lms:PUBLISHER/MODEL)
//
// Results go to stdout (the folder for pull, the table for list); progress and notes to stderr.

import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { CtxError } from '../errors.js';
import { formatBytes } from '../units.js';
import { readModelConfig, type ModelConfig } from '../model/config.js';
import { folderBytes, pullModel, readDownloadRecord, removeDownload, type PullProgress } from '../model/hub.js';
import { cachedModelDir, modelsCacheDir } from '../model/paths.js';
import { downloadSize, findEntry, loadRegistry, type Registry, type RegistryEntry } from '../model/registry.js';
import { listLocalModels, lmStudioModelsDirs, ollamaModelsDir, type LocalModel } from '../model/local-models.js';
import { resolveModelDir } from '../model/resolve.js';
import { loadTokenizer } from '../model/tokenizer.js';
import { describeSoftplus } from '../model/softplus-config.js';
import { WeightStore, type ModelWeights } from '../model/weights.js';
import { ggufModelConfig } from '../model/gguf/config.js';
import { GgufFile } from '../model/gguf/file.js';
import { GgufWeights } from '../model/gguf/weights.js';
import { isModelFile } from '../model/model.js';
import { formatCount, formatTable, out, type RunContext } from './io.js';

interface GlobalOptions {
  json?: boolean;
  quiet?: boolean;
}

export interface ModelsCommandDeps {
  /** The registry to use instead of the one that ships with ctx (tests). */
  registry?: () => Registry;
}

export function modelsCommand(run: RunContext, deps: ModelsCommandDeps = {}): Command {
  const registry = deps.registry ?? (() => loadRegistry());
  const models = new Command('models').description('list, download, remove and describe models');

  models
    .command('list')
    .description('models ctx knows by name, which are downloaded, and those ollama and LM Studio hold')
    .action((_o: unknown, cmd: Command) => list(run, registry(), cmd.optsWithGlobals<GlobalOptions>()));

  models
    .command('pull')
    .description('download a model into the cache (resumes an interrupted download)')
    .argument('<name>', 'a name from `ctx models list`')
    .action((name: string, _o: unknown, cmd: Command) => pull(run, registry(), name, cmd.optsWithGlobals<GlobalOptions>()));

  models
    .command('rm')
    .description('delete a downloaded model')
    .argument('<name>', 'a name from `ctx models list`')
    .action((name: string, _o: unknown, cmd: Command) => remove(run, registry(), name, cmd.optsWithGlobals<GlobalOptions>()));

  models
    .command('info')
    .description('describe a model: architecture, size, window, beacon settings, tokenizer')
    .argument('<model>', 'a name from `ctx models list`, a model folder or a .gguf file')
    .action((model: string, _o: unknown, cmd: Command) => info(run, registry(), model, cmd.optsWithGlobals<GlobalOptions>()));

  return models;
}

function entryOrFail(registry: Registry, name: string): RegistryEntry {
  const entry = findEntry(registry, name);
  if (!entry) {
    throw new CtxError('usage', `unknown model "${name}" (known: ${registry.entries.map((e) => e.name).join(', ')})`);
  }
  return entry;
}

// ---------------------------------------------------------------------------------------------
// list

interface ListRow {
  name: string;
  kind: 'hub' | 'local';
  hub?: string;
  revision?: string;
  pinned?: boolean;
  gated?: boolean;
  arch?: string;
  params?: string;
  nativeWindow?: number;
  recommendedStrategy: string;
  license: string;
  /** Downloaded (hub) or present (local). */
  available: boolean;
  dir: string;
  bytesOnDisk: number | null;
  downloadBytes: number | null;
  downloadBytesExact: boolean;
  notes: string[];
}

function listRows(registry: Registry, env: NodeJS.ProcessEnv): ListRow[] {
  return registry.entries.map((e) => {
    const common = {
      name: e.name,
      arch: e.arch,
      params: e.params,
      nativeWindow: e.nativeWindow,
      recommendedStrategy: e.recommendedStrategy,
      license: e.license,
      notes: e.notes ?? [],
    };
    if (e.kind === 'local') {
      const available = existsSync(e.dir);
      return { ...common, ...fromConfig(e, available ? e.dir : null), kind: 'local', available, dir: e.dir, bytesOnDisk: available ? folderBytes(e.dir) : null, downloadBytes: null, downloadBytesExact: true };
    }
    const dir = cachedModelDir(e.name, env);
    const available = readDownloadRecord(dir) !== null;
    const size = downloadSize(e);
    return {
      ...common,
      ...fromConfig(e, available ? dir : null),
      kind: 'hub',
      hub: e.hub,
      revision: e.revision,
      pinned: e.pinned,
      gated: e.gated,
      available,
      dir,
      bytesOnDisk: available ? folderBytes(dir) : null,
      downloadBytes: size.bytes,
      downloadBytesExact: size.exact,
    };
  });
}

/**
 * PARAMS and WINDOW as `models info` knows them: the registry's, else from the model's config.json
 * when the folder is here (a built-in or downloaded model), so list and info never disagree.
 */
function fromConfig(e: RegistryEntry, dir: string | null): { params?: string; nativeWindow?: number } {
  if ((e.params && e.nativeWindow) || dir === null) return {};
  try {
    const c = readModelConfig(dir);
    return { params: e.params ?? formatParams(estimateParams(c)), nativeWindow: e.nativeWindow ?? c.maxPositions };
  } catch {
    return {}; // an unreadable config shows as "?" here; `models info` says why
  }
}

function list(run: RunContext, registry: Registry, opts: GlobalOptions): void {
  const rows = listRows(registry, run.env);
  const local = listLocalModels(run.env);
  if (opts.json) {
    out(run, JSON.stringify({ cacheDir: modelsCacheDir(run.env), models: rows, local }, null, 2));
    return;
  }
  const table = [['NAME', 'PARAMS', 'WINDOW', 'STRATEGY', 'SIZE', 'STATUS']];
  for (const r of rows) {
    const size = r.bytesOnDisk !== null ? formatBytes(r.bytesOnDisk) : r.downloadBytes !== null ? `${r.downloadBytesExact ? '' : '~'}${formatBytes(r.downloadBytes)}` : '?';
    const status =
      r.kind === 'local' ? (r.available ? 'built in' : 'built in, missing') : r.available ? 'downloaded' : `not downloaded${r.gated ? ' (gated: needs HF_TOKEN)' : ''}`;
    table.push([r.name, r.params ?? '?', r.nativeWindow ? formatCount(r.nativeWindow) : '?', r.recommendedStrategy, size, status]);
  }
  for (const line of formatTable(table, [false, true, true, false, true, false])) out(run, line);
  if (local.length > 0) {
    out(run, '');
    const found = [['ON THIS MACHINE (-m NAME)', 'SOURCE', 'SIZE', 'FILE']];
    for (const m of local) found.push([m.ref, LOCAL_SOURCE_NAMES[m.source], formatBytes(m.bytes), m.path]);
    for (const line of formatTable(found, [false, false, true, false])) out(run, line);
  }
  if (!opts.quiet) {
    run.stderr.write(`\nModels are downloaded to ${modelsCacheDir(run.env)} (set CTX_CACHE_DIR to change it).\n`);
    const lms = lmStudioModelsDirs(run.env);
    run.stderr.write(`ollama's and LM Studio's models are read in place from ${[ollamaModelsDir(run.env), ...lms].join(', ')}${lms.length ? '' : ' (no LM Studio folder found)'}.\n`);
  }
}

const LOCAL_SOURCE_NAMES: Record<LocalModel['source'], string> = { ollama: 'ollama', lms: 'LM Studio' };

// ---------------------------------------------------------------------------------------------
// pull

async function pull(run: RunContext, registry: Registry, name: string, opts: GlobalOptions): Promise<void> {
  const entry = entryOrFail(registry, name);
  if (entry.kind === 'local') {
    if (!opts.quiet) run.stderr.write(`ctx: "${name}" ships with ctx; nothing to download\n`);
    out(run, opts.json ? JSON.stringify({ name, dir: entry.dir, downloaded: false }) : entry.dir);
    return;
  }
  const dir = cachedModelDir(name, run.env);
  const already = readDownloadRecord(dir) !== null;
  const progress = opts.quiet || opts.json || already ? undefined : progressReporter(run);
  if (!already && !opts.quiet && !entry.pinned) {
    run.stderr.write(`ctx: note: "${name}" is not pinned to a commit (${entry.unpinned}); downloading what "${entry.revision}" points to now, without checksums\n`);
  }
  if (!already && !opts.quiet && entry.gated && !run.env.HF_TOKEN) {
    run.stderr.write(`ctx: note: ${entry.hub} is gated: the hub will refuse it without HF_TOKEN (a token of an account that accepted its license)\n`);
  }
  try {
    await pullModel(entry, { env: run.env, signal: run.signal, onProgress: progress?.update });
  } finally {
    progress?.finish();
  }
  if (already && !opts.quiet) run.stderr.write(`ctx: "${name}" is already downloaded\n`);
  const record = readDownloadRecord(dir)!;
  out(run, opts.json ? JSON.stringify({ name, dir, downloaded: !already, files: record.files }, null, 2) : dir);
}

/**
 * Download progress on stderr: one redrawn bar on a terminal, a line per file (and per resume)
 * otherwise, so logs stay readable.
 */
function progressReporter(run: RunContext): { update: (p: PullProgress) => void; finish: () => void } {
  const tty = (run.stderr as NodeJS.WriteStream).isTTY === true;
  let lastFile = -1;
  let lastDraw = 0;
  let drawn = false;
  const started = Date.now();
  const size = (n: number | null) => (n === null ? '?' : formatBytes(n));

  const update = (p: PullProgress) => {
    if (!tty) {
      if (p.fileIndex !== lastFile) {
        lastFile = p.fileIndex;
        run.stderr.write(`ctx: downloading ${p.file} (${p.fileIndex + 1}/${p.fileCount}, ${size(p.fileTotal)})\n`);
      }
      if (p.resumedFrom !== undefined) run.stderr.write(`ctx: resuming ${p.file} at ${size(p.resumedFrom)}\n`);
      return;
    }
    const now = Date.now();
    if (now - lastDraw < 100 && p.fileDone !== p.fileTotal) return;
    lastDraw = now;
    const fraction = p.total ? p.done / p.total : p.fileTotal ? p.fileDone / p.fileTotal : 0;
    const width = 24;
    const filled = Math.round(Math.min(1, fraction) * width);
    const rate = p.done / Math.max(0.001, (now - started) / 1000);
    const line =
      `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${Math.floor(fraction * 100)}%  ` +
      `${p.file} (${p.fileIndex + 1}/${p.fileCount})  ${size(p.done)}${p.total ? ` of ${size(p.total)}` : ''}  ${formatBytes(rate)}/s`;
    run.stderr.write(`\r\x1b[2K${line}`);
    drawn = true;
  };
  const finish = () => {
    if (drawn) run.stderr.write('\r\x1b[2K');
  };
  return { update, finish };
}

// ---------------------------------------------------------------------------------------------
// rm

function remove(run: RunContext, registry: Registry, name: string, opts: GlobalOptions): void {
  const entry = entryOrFail(registry, name);
  if (entry.kind === 'local') throw new CtxError('usage', `"${name}" ships with ctx and cannot be removed`);
  const { removed, bytes } = removeDownload(name, modelsCacheDir(run.env));
  if (opts.json) out(run, JSON.stringify({ name, removed, bytes }));
  else out(run, removed ? `removed ${name} (${formatBytes(bytes)})` : `${name} is not downloaded`);
}

// ---------------------------------------------------------------------------------------------
// info

interface InfoReport {
  name: string;
  dir: string | null;
  registry: { hub?: string; revision?: string; pinned?: boolean; license: string; recommendedStrategy: string; notes: string[] } | null;
  config: (ModelConfig & { estimatedParams: number }) | null;
  weights: { files: number; tensors: number; params: number; bytes: number; dtypes: string[] } | null;
  tokenizer: { vocabSize: number; bosId: number | null; eosIds: number[]; addBos: boolean; chatTemplate: boolean; cutRule: string } | null;
  /** Parts that could not be read, with the reason (info describes what it can). */
  problems: string[];
}

/** Parameter count, stored types and bytes of a model's weights. */
function weightsSummary(w: ModelWeights, files: number): NonNullable<InfoReport['weights']> {
  let params = 0;
  const dtypes = new Set<string>();
  for (const name of w.names()) {
    const t = w.info(name);
    params += t.shape.reduce((a, b) => a * b, 1);
    dtypes.add(t.dtype);
  }
  return { files, tensors: w.names().length, params, bytes: w.totalBytes(), dtypes: [...dtypes].sort() };
}

/** Parameters implied by the config's shapes (weights may be absent or sharded oddly). */
export function estimateParams(c: ModelConfig): number {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const attn = c.hiddenSize * (q + 2 * kv) + q * c.hiddenSize + (c.qkvBias ? q + 2 * kv : 0);
  const mlp = 3 * c.hiddenSize * c.intermediateSize;
  const norms = 2 * c.hiddenSize;
  let beacon = 0;
  // Activation Beacon's projections, or FocusLLM's candidate ones (both checkpoints store beacon_embed_tokens).
  const param = c.beacon?.param ?? c.focus?.param;
  if (param) {
    const qkv = (param.includes('q') ? q : 0) + (param.includes('k') ? kv : 0) + (param.includes('v') ? kv : 0);
    beacon = c.hiddenSize * qkv + (c.qkvBias ? qkv : 0) + (param.includes('o') ? q * c.hiddenSize : 0);
  }
  const perLayer = attn + mlp + norms + beacon;
  const embed = c.vocabSize * c.hiddenSize;
  return embed * (c.tieWordEmbeddings ? 1 : 2) + c.numLayers * perLayer + c.hiddenSize + (param ? c.hiddenSize : 0);
}

function formatParams(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}B`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}K`;
  return String(n);
}

async function info(run: RunContext, registry: Registry, model: string, opts: GlobalOptions): Promise<void> {
  const entry = findEntry(registry, model);
  const report: InfoReport = {
    name: model,
    dir: null,
    registry: entry
      ? {
          ...(entry.kind === 'hub' ? { hub: entry.hub, revision: entry.revision, pinned: entry.pinned } : {}),
          license: entry.license,
          recommendedStrategy: entry.recommendedStrategy,
          notes: entry.notes ?? [],
        }
      : null,
    config: null,
    weights: null,
    tokenizer: null,
    problems: [],
  };

  try {
    report.dir = await resolveModelDir(model, { registry, env: run.env, download: false });
  } catch (e) {
    // A registry model that is not downloaded yet is still worth describing from the registry.
    if (!entry || !(e instanceof CtxError)) throw e;
    report.problems.push(e.message);
  }
  if (report.dir) {
    const attempt = <T>(what: string, f: () => T): T | null => {
      try {
        return f();
      } catch (e) {
        if (!(e instanceof CtxError)) throw e;
        report.problems.push(`${what}: ${e.message}`);
        return null;
      }
    };
    // A GGUF file holds config, weights and tokenizer: its header is parsed once, and a file that
    // cannot be read is one problem, not three.
    const dir = report.dir;
    let gguf: GgufFile | null = null;
    if (isModelFile(dir)) {
      try {
        gguf = await GgufFile.open(dir);
      } catch (e) {
        if (!(e instanceof CtxError)) throw e;
        report.problems.push(`GGUF file: ${e.message}`);
      }
    }
    const file = gguf;
    const readable = file !== null || !isModelFile(dir);
    const config = readable ? attempt('config', () => (file ? ggufModelConfig(file) : readModelConfig(dir))) : null;
    if (config) report.config = { ...config, estimatedParams: estimateParams(config) };
    if (file && config) report.weights = attempt('weights', () => weightsSummary(GgufWeights.fromFile(file, config), 1));
    else if (!file && readable) {
      report.weights = attempt('weights', () => {
        const store = WeightStore.open(dir);
        return weightsSummary(store, store.files.length);
      });
    }
    if (readable) {
      try {
        const tok = await loadTokenizer(dir, { eosIds: config?.eosTokenIds, ggufFile: file ?? undefined });
        report.tokenizer = {
          vocabSize: tok.vocabSize,
          bosId: tok.bosId,
          eosIds: tok.eosIds,
          addBos: tok.addBos,
          chatTemplate: tok.chatTemplate !== null,
          cutRule: tok.cutRule.reason,
        };
      } catch (e) {
        if (!(e instanceof CtxError)) throw e;
        report.problems.push(`tokenizer: ${e.message}`);
      }
    }
  }

  if (opts.json) {
    out(run, JSON.stringify(report, null, 2));
    return;
  }
  for (const line of describe(report, entry)) out(run, line);
}

function describe(r: InfoReport, entry: RegistryEntry | undefined): string[] {
  const lines: string[] = [];
  const kv = (k: string, v: string) => lines.push(`${`${k}:`.padEnd(14)}${v}`);
  kv('model', r.name);
  if (r.dir) kv(isModelFile(r.dir) ? 'file' : 'folder', r.dir);
  if (r.registry?.hub) kv('hub', `${r.registry.hub} @ ${r.registry.revision}${r.registry.pinned ? '' : ' (not pinned: checksums unknown)'}`);
  if (r.registry) kv('license', r.registry.license);
  const c = r.config;
  if (c) {
    kv('architecture', `${c.arch}: ${c.numLayers} layers, hidden ${c.hiddenSize}, MLP ${c.intermediateSize}`);
    kv('attention', `${c.numHeads} query heads, ${c.numKvHeads} key/value heads, head dim ${c.headDim}${c.qkvBias ? ', q/k/v bias' : ''}`);
    if (c.softplus) kv('softplus', `${describeSoftplus(c.softplus)} instead of softmax (runs on cpu and reference, not cuda)`);
    const s = c.ropeScaling;
    const scaling = s ? `, RoPE scaling ${s.type} x${s.type === 'clex' ? s.maxFactor : s.factor}` : '';
    kv('window', `${formatCount(c.maxPositions)} tokens (rope theta ${c.ropeTheta}${scaling}${c.rotaryDim !== c.headDim ? `, ${c.rotaryDim} of ${c.headDim} dims rotated` : ''})`);
    if (s?.type === 'clex') {
      kv(
        'clex',
        `t = min(ceil(L / ${formatCount(c.maxPositions)}), ${s.maxFactor}) per forward call (L = tokens so far); reach ${formatCount(c.maxPositions * s.maxFactor)} tokens ` +
          `(${formatCount(c.maxPositions)} x max_factor ${s.maxFactor}); ODE ${s.act}, param_factor ${s.paramFactor}${s.logScale ? ', log_scale queries' : ''}`,
      );
    }
    kv('vocabulary', formatCount(c.vocabSize));
  } else if (entry) {
    if (entry.arch) kv('architecture', entry.arch);
    if (entry.nativeWindow) kv('window', `${formatCount(entry.nativeWindow)} tokens`);
  }
  if (r.weights) {
    kv('parameters', `${formatParams(r.weights.params)} (${r.weights.dtypes.join(', ')}, ${formatBytes(r.weights.bytes)} in ${r.weights.files} file${r.weights.files === 1 ? '' : 's'})`);
  } else if (c) {
    kv('parameters', `about ${formatParams(estimateParams(c))} (from config.json)`);
  } else if (entry?.params) {
    kv('parameters', entry.params);
  }
  if (c?.beacon) {
    const b = c.beacon;
    kv(
      'beacon',
      `${b.version} (${b.pos}, ${b.attn}), window ${b.window}, stride ${b.stride}, ratios ${b.ratios.join('/')} (${b.ratioMix}), ` +
        `projections ${b.param.join('')}${b.sinkSize ? `, sink ${b.sinkSize}` : ''}`,
    );
  }
  if (c?.focus) {
    const f = c.focus;
    kv('focus', `FocusLLM, local window ${f.localWindow}, chunks of ${f.stride}, from ${f.shortPromptLimit} tokens, candidate projections ${f.param.join('')}`);
  }
  const strategy = c ? (c.beacon ? 'beacon' : c.focus ? 'focus' : 'select') : r.registry?.recommendedStrategy;
  if (c?.ropeScaling?.type === 'clex') kv('strategy', `full with CLEX up to ${formatCount(c.maxPositions * c.ropeScaling.maxFactor)} tokens, select beyond (no beacon weights)`);
  else if (strategy) kv('strategy', `${strategy} recommended${c && !c.beacon && !c.focus ? ' (no beacon weights)' : ''}`);
  if (r.tokenizer) {
    const t = r.tokenizer;
    kv('tokenizer', `${formatCount(t.vocabSize)} ids, BOS ${t.bosId ?? 'none'}${t.addBos ? ' (added)' : ''}, EOS ${t.eosIds.join(', ') || 'none'}, chat template ${t.chatTemplate ? 'yes' : 'no'}`);
  }
  for (const note of r.registry?.notes ?? []) lines.push(`note:         ${note}`);
  for (const p of r.problems) lines.push(`not read:     ${p}`);
  return lines;
}
