// Options shared by the commands that run a model (ask, summarize, chat): model, backend,
// strategy parameters, sampling, output and cache. Declared once here so --help, env vars and the
// config file agree; documentOptions turns them into the library's options (engine/open.ts).

import { Command, InvalidArgumentError, Option } from 'commander';
import type { BackendChoice } from '../backend/index.js';
import { DEFAULT_CACHE_MAX_BYTES } from '../cache/store.js';
import { CtxError } from '../errors.js';
import type { DocumentOptions } from '../engine/open.js';
import { NAMED_TEMPLATES, type PromptFormatChoice } from '../engine/prompt-format.js';
import type { SamplingOptions } from '../engine/sampler.js';
import type { Renderer } from '../ui/events.js';
import type { RopeScalingName } from '../engine/rope.js';
import type { StrategyName, StrategyOptions } from '../engine/strategies/index.js';
import { guardedStdin, type DocumentInputs, type RunContext } from './io.js';
import { parseReweightChoice, type SoftplusReweightChoice } from '../model/softplus-config.js';
import { byteSizeArg, followLinksOption, kvDtypeOption, maxFileBytesOption, modelOption, noStreamOption, strategyOption, systemOption } from './options.js';

export interface EngineCliOptions {
  model?: string;
  system?: string;
  /** A chat template by name or Jinja file instead of the model's. */
  template?: string;
  /** A plain prompt (document, blank line, question) even when the model has a chat template. */
  raw?: boolean;
  strategy: StrategyName | 'auto';
  backend: BackendChoice;
  dtype?: string;
  kvDtype?: string;
  threads?: number;
  maxTokens: number;
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  /** Texts that end the answer when the model writes them (repeatable). */
  stop?: string[];
  seed: number;
  stream: boolean;
  chunk?: number;
  beaconRatio?: number;
  selectK?: number;
  selectInit?: number;
  selectLocal?: number;
  selectReuse?: number;
  sink?: number;
  recent?: number;
  rope?: RopeScalingName;
  ropeFactor?: number;
  /** Softplus-attention models: run LSSA ('off') or LSSAR with this power instead of the config's. */
  softplusReweight?: SoftplusReweightChoice;
  maxFileBytes: number;
  followLinks?: boolean;
  /** Seconds to wait for the first bytes of piped stdin (ask, summarize; 0 = forever). */
  stdinWait?: number;
  maxKvMemory?: number;
  /** Use and fill the session cache (`--no-cache` turns it off). */
  cache: boolean;
  cacheMaxSize: number;
  /** JSON Lines events on stdout. */
  events?: boolean;
  /** Plain text output even on a terminal. */
  plain?: boolean;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
}

const int = (min: number) => (text: string) => {
  const v = Number(text);
  if (!Number.isInteger(v) || v < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}`);
  return v;
};
const num = (min: number, max = Infinity) => (text: string) => {
  const v = Number(text);
  if (!Number.isFinite(v) || v < min || v > max) throw new InvalidArgumentError(`expected a number in [${min}, ${max === Infinity ? '∞' : max}]`);
  return v;
};

const reweightArg = (text: string) => {
  const choice = parseReweightChoice(text);
  if (choice === null) throw new InvalidArgumentError('expected "off" or a power p in (0, 1000], e.g. 3 or 15');
  return choice;
};

export function addEngineOptions(cmd: Command, defaults: { maxTokens: number }): Command {
  cmd
    .addOption(modelOption())
    .addOption(systemOption())
    .addOption(new Option('--template <name|file>', `the prompt's chat template instead of the model's: ${Object.keys(NAMED_TEMPLATES).join(', ')}, or a Jinja file`))
    .addOption(new Option('--raw', 'a plain prompt (the document, a blank line, the question), even when the model has a chat template'))
    .addOption(strategyOption())
    .addOption(new Option('--backend <name>', 'where the math runs').choices(['auto', 'cpu', 'cuda', 'reference']).default('auto'))
    .addOption(new Option('--dtype <type>', 'weight precision: f32; q8 (cpu: every matrix 8-bit) or q4 (cpu: 4-bit MLP and LM head); bf16 (cuda)'))
    .addOption(kvDtypeOption())
    .addOption(new Option('--threads <n>', 'CPU threads (cpu backend)').argParser(int(1)))
    .addOption(new Option('--max-tokens <n>', 'longest answer in tokens').argParser(int(1)).default(defaults.maxTokens))
    .addOption(new Option('--temperature <t>', 'sampling temperature (0 = greedy)').argParser(num(0, 10)).default(0))
    .addOption(new Option('--top-k <k>', 'sample from the k most likely tokens (0 = all)').argParser(int(0)).default(0))
    .addOption(new Option('--top-p <p>', 'sample from the smallest set with probability p').argParser(num(0.001, 1)).default(1))
    .addOption(new Option('--repetition-penalty <p>', 'discourage repeated tokens (1 = off)').argParser(num(0.1, 10)).default(1))
    .addOption(new Option('--seed <n>', 'random seed for sampling').argParser(int(0)).default(0))
    .addOption(new Option('--stop <text>', 'end the answer where the model writes this text (repeatable)').argParser((v: string, prev?: string[]) => [...(prev ?? []), v]))
    .addOption(noStreamOption())
    .addOption(new Option('--chunk <n>', 'tokens per prefill step').argParser(int(1)))
    .addOption(new Option('--beacon-ratio <r>', 'beacon: force this condensing ratio instead of choosing it from the length').argParser(int(0)))
    .addOption(new Option('--select-k <k>', 'select: tokens chosen per layer (top-k; default min(2048, window / 2))').argParser(int(1)))
    .addOption(new Option('--select-init <n>', 'select: first tokens always attended (default min(128, window / 16))').argParser(int(0)))
    .addOption(new Option('--select-local <n>', 'select: recent tokens always attended, and the prefill step (default min(512, window / 8))').argParser(int(1)))
    .addOption(new Option('--select-reuse <cos>', 'select: reuse a layer\'s selection while decoding when cos(q̄) ≥ this (1.01 = never)').argParser(num(-1, 1.01)))
    .addOption(new Option('--sink <n>', 'stream: first tokens always kept').argParser(int(0)))
    .addOption(new Option('--recent <n>', 'stream: recent tokens kept').argParser(int(1)))
    .addOption(new Option('--rope <type>', 'full: RoPE scaling (clex: a CLEX checkpoint\'s own, its default)').choices(['none', 'linear', 'ntk', 'dynamic', 'yarn', 'truncated', 'clex']))
    .addOption(new Option('--rope-factor <s>', 'full: RoPE scaling factor (target length / native window)').argParser(num(1)))
    .addOption(new Option('--softplus-reweight <off|p>', 'softplus-attention models: no re-weighting (LSSA), or re-weighting with power p (LSSAR), instead of the config\'s').argParser(reweightArg))
    .addOption(maxFileBytesOption())
    .addOption(followLinksOption())
    .addOption(new Option('--max-kv-memory <size>', 'refuse runs whose KV memory would exceed this (default 75% of RAM)').argParser(byteSizeArg))
    .addOption(new Option('--events', 'print what happens as JSON Lines on stdout (source, progress, token, done, error)'))
    .addOption(new Option('--plain', 'plain text output even on a terminal (no interactive display)'))
    .addOption(new Option('--no-cache', 'neither use nor fill the session cache of read documents, nor the kept text of PDFs and token counts'))
    .addOption(new Option('--cache-max-size <size>', 'size cap of the session cache; least recently used entries go first').argParser(byteSizeArg).default(DEFAULT_CACHE_MAX_BYTES, '4G'));
  return cmd;
}

export function strategyOptions(o: EngineCliOptions): StrategyOptions {
  const opts: StrategyOptions = {
    strategy: o.strategy,
    chunk: o.chunk,
    beaconRatio: o.beaconRatio,
    topK: o.selectK,
    nInit: o.selectInit,
    nLocal: o.selectLocal,
    reuseCosine: o.selectReuse === undefined ? undefined : o.selectReuse > 1 ? null : o.selectReuse,
    sink: o.sink,
    recent: o.recent,
    rope: o.rope && o.rope !== 'none' ? { type: o.rope, factor: o.ropeFactor ?? 2 } : null,
  };
  if (o.rope === 'clex' && o.ropeFactor !== undefined) {
    throw new CtxError('usage', '--rope-factor does not apply to --rope clex: CLEX chooses its scale factor per call from the length, up to the config\'s max_factor');
  }
  return opts;
}

export function samplingOptions(o: EngineCliOptions): SamplingOptions & { stopStrings?: string[] } {
  return { temperature: o.temperature, topK: o.topK, topP: o.topP, repetitionPenalty: o.repetitionPenalty, seed: o.seed, stopStrings: o.stop };
}

/**
 * The library's options for these flags: the inputs, the run's stdin (guarded by --stdin-wait) and
 * environment, its signal, and events to the renderer `r`.
 */
export function documentOptions(o: EngineCliOptions, inputs: DocumentInputs, run: Pick<RunContext, 'stdin' | 'env' | 'signal'> & Partial<Pick<RunContext, 'stdinKind'>>, r: Renderer): DocumentOptions {
  return {
    inputs: inputs.specs,
    model: o.model,
    backend: o.backend,
    dtype: o.dtype,
    kvDtype: o.kvDtype,
    threads: o.threads,
    softplusReweight: o.softplusReweight,
    system: o.system,
    promptFormat: promptFormatChoice(o),
    strategy: strategyOptions(o),
    maxTokens: o.maxTokens,
    maxFileBytes: o.maxFileBytes,
    followLinks: o.followLinks,
    maxKvMemory: o.maxKvMemory,
    cache: o.cache === false ? false : { maxBytes: o.cacheMaxSize },
    stdin: guardedStdin(inputs.specs, run, o.stdinWait ?? 0),
    pipeWaitSeconds: o.stdinWait ?? 0,
    env: run.env,
    signal: run.signal,
    onEvent: (e) => r.event(e),
  };
}

/** --raw or --template, or the model's own chat template. */
export function promptFormatChoice(o: Pick<EngineCliOptions, 'raw' | 'template'>): PromptFormatChoice {
  if (o.raw && o.template !== undefined) throw new CtxError('usage', '--raw and --template both set the prompt format: choose one');
  if (o.raw) return 'raw';
  return o.template !== undefined ? { template: o.template } : 'model';
}
