// Opening a document: the library's front door (src/index.ts exports it; the CLI is one client).
//
//   inputs ──openInputs──> segments ──(source markers)──> tokens ──plan──> session ──> OpenDocument
//   files, folders,        + where they   when cite        tokenizer     restored from the cache,
//   globs, "-" (stdin)     came from                       workers       or read and saved
//
// A document of any length streams through: the inputs are read once to check them (sources,
// skips), once to count and hash their tokens, and once more into the model, holding neither the
// text nor the ids unless they are short (read.ts HOLD_CHARS, document-tokens.ts HOLD_TOKENS).
// Citation markers are put in as the text streams past (citations/source-marking.ts).
//
// prepareDocument does the first half (inputs, model, tokens) and stops: summarize decides from the
// token count how to go on. openDocument does all of it. Progress arrives as typed events
// (events.ts) through `onEvent`; `signal` cancels any stage. Nothing here prints or parses flags.

import type { Readable } from 'node:stream';
import type { BackendChoice } from '../backend/index.js';
import { pdfTextDir, SessionCache, sessionsDir, tokenMemoDir } from '../cache/store.js';
import { TokenMemo } from '../cache/token-memo.js';
import { CtxError } from '../errors.js';
import { join } from 'node:path';
import type { Document, Segment } from '../input/document.js';
import { PdfTextCache } from '../input/pdf-text-cache.js';
import { openInputs, type Inputs } from '../input/read.js';
import { ctxCacheDir } from '../model/paths.js';
import { DocumentTokens } from './document-tokens.js';
import { readOrRestore, type PendingSave } from './cached-read.js';
import { SourceMarking } from './citations/source-marking.js';
import { markersOffReason } from './citations/markers.js';
import { Conversation } from './conversation.js';
import { ignoreEvents, type EventSink, type RunEvent } from './events.js';
import { loadModel, type LoadedModel } from './loaded-model.js';
import { OpenDocument } from './open-document.js';
import { formatNote, promptFormat, type PromptFormat, type PromptFormatChoice } from './prompt-format.js';
import type { RunPlan } from './plan.js';
import { planModelOf, planPrompt, refuseUnlessFits } from './prompt-plan.js';
import type { Session } from './session.js';
import type { StrategyOptions } from './strategies/index.js';
import type { SoftplusReweightChoice } from '../model/softplus-config.js';

/** Tokens a question may take when it is not known at planning time (chat follow-ups). */
export const UNKNOWN_QUESTION_TOKENS = 64;

export interface DocumentOptions {
  /** Files, folders and globs, in order; "-" is stdin. */
  inputs: string[];
  /**
   * A registry name or a model folder (loaded here, closed with the document), or a model from
   * loadModel() (the caller closes it). Default: ctx's default model.
   */
  model?: string | LoadedModel;
  /** Where the math runs (when the model is loaded here). Default 'auto'. */
  backend?: BackendChoice;
  dtype?: string;
  /** KV storage on the cpu backend: f16 (default) or f32. */
  kvDtype?: string;
  threads?: number;
  /** Softplus-attention models: run LSSA ('off') or LSSAR with this power instead of the config's. */
  softplusReweight?: SoftplusReweightChoice;
  /** A system prompt before the document. */
  system?: string;
  /** The prompt's format: the model's chat template ('model', the default), plain text ('raw'), or { template: name or Jinja file }. */
  promptFormat?: PromptFormatChoice;
  /** The long-context strategy and its parameters; default: chosen for the model and length. */
  strategy?: StrategyOptions;
  /** Longest answer in tokens, reserved in the plan. Default 512. */
  maxTokens?: number;
  /** Source markers in the document, a citation instruction with each question, checked citations. Default false. */
  cite?: boolean;
  /** Size cap of files found in folders and globs. Default 1 MiB. */
  maxFileBytes?: number;
  /** Follow symbolic links that lead out of a folder being walked. Default false. */
  followLinks?: boolean;
  /** Refuse runs whose KV memory would exceed this many bytes. Default 75% of RAM. */
  maxKvMemory?: number;
  /** The session cache of read documents: on by default (size cap 4 GiB); false turns it off. */
  cache?: false | { maxBytes?: number };
  /** Where "-" reads from. Default process.stdin. */
  stdin?: Readable;
  /**
   * How much of a document stays in memory between its readings: text up to `chars` characters
   * (default 16 Mi), ids up to `tokens` (default 4 Mi). Past them each reading reads the inputs
   * again; lowering them shows that path on a small document.
   */
  hold?: { chars?: number; tokens?: number };
  /** A named pipe or device that sends nothing at all for this many seconds fails with one line naming it. Default 0: wait for ever. */
  pipeWaitSeconds?: number;
  /** Where the cache folders and hub settings come from (CTX_CACHE_DIR, CTX_HF_ENDPOINT…). Default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Cancels reading, loading or tokenizing; the document's questions take their own signals. */
  signal?: AbortSignal;
  /** Every event of this document: opening it and every answer about it. */
  onEvent?: (e: RunEvent) => void;
}

/** A document in a session, below OpenDocument: its conversation, plan and session-cache key (null without the cache). */
export interface ReadSession {
  session: Session;
  conversation: Conversation;
  plan: RunPlan;
  cacheKey: string | null;
  /** The session's cache entry, to start once it holds nothing up and finish before the run ends (cached-read.ts). */
  saving: PendingSave | null;
}

/** Inputs read and tokenized with a loaded model, not yet read into a session. */
export class PreparedDocument {
  readonly emit: EventSink;
  private closed = false;

  constructor(
    readonly options: DocumentOptions,
    /** The inputs: their sources and skips, and their segments again. */
    private readonly inputs: Inputs,
    /** The document's segments as the model reads them (with source markers when cite is on), read again at each call. */
    private readonly segments: (signal?: AbortSignal) => AsyncIterable<Segment>,
    readonly loaded: LoadedModel,
    readonly tokens: DocumentTokens,
    readonly sources: SourceMarking,
    /** How the prompt around the document is written. */
    readonly format: PromptFormat,
    /** The model was loaded here, so closing the document closes it. */
    private readonly ownsModel: boolean,
  ) {
    this.emit = options.onEvent ?? ignoreEvents;
  }

  /** The document's sources (what was read) and skipped files. */
  get sourcesRead(): Pick<Document, 'sources' | 'skipped'> {
    return { sources: this.inputs.sources, skipped: this.inputs.skipped };
  }

  /** The whole document in memory, as the model reads it (hierarchical summaries cut it into sections). */
  async document(): Promise<Document> {
    const segments: Segment[] = [];
    for await (const s of this.segments(this.options.signal)) segments.push(s);
    return { segments, ...this.sourcesRead };
  }

  /**
   * Plans (refusing early with the numbers when the document does not fit), then puts it in a
   * session: restored from the cache when it was read before, else read and saved. `question`, when
   * known, is planned for exactly; else a question of UNKNOWN_QUESTION_TOKENS is. `notes` join the
   * plan's. On failure the model is closed when this document owns it.
   */
  async read(o: { question?: string; notes?: string[] } = {}): Promise<OpenDocument> {
    const after = o.question === undefined ? null : `${o.question}${this.sources.instruction()}`;
    const { session, conversation, plan, cacheKey, saving } = await this.readSession(after, o.notes ?? []);
    const parts = { loaded: this.loaded, sources: this.sources, emit: this.emit, system: this.options.system, format: this.format, maxTokens: this.options.maxTokens, close: () => this.close() };
    return new OpenDocument(parts, session, conversation, plan, cacheKey, saving);
  }

  /**
   * read() below OpenDocument: the session and conversation for a prompt whose text after the
   * document is `after` (exactly; null when unknown). Closes the model on failure when it owns it.
   */
  async readSession(after: string | null, notes: string[]): Promise<ReadSession> {
    try {
      return await this.plannedRead(after, notes);
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  private async plannedRead(after: string | null, notes: string[]): Promise<ReadSession> {
    const { loaded, tokens, options } = this;
    const { plan, conversation, prefix } = planPrompt(planModelOf(loaded), this.format, options.system, tokens.count, after, {
      strategy: options.strategy,
      maxTokens: options.maxTokens,
      maxKvMemory: options.maxKvMemory,
    });
    refuseUnlessFits(plan);
    this.emit({
      type: 'plan',
      strategy: plan.description,
      ...(plan.strategyReason ? { strategyReason: plan.strategyReason } : {}),
      documentTokens: tokens.count,
      kvRows: plan.kvRows,
      kvBytes: plan.kvBytes,
      nativeWindow: plan.nativeWindow,
      notes: [...notes, ...formatNote(this.format), ...this.sources.notes(), ...plan.notes],
      // Where each source ends in the document, in tokens: progress counts document tokens too.
      sourceEnds: this.inputs.sources.map((s) => tokens.sourceEnds.get(s.path) ?? 0),
    });

    const { session, key, saving } = await readOrRestore({
      loaded,
      plan,
      prefix,
      document: tokens,
      cache: openCache(options),
      inputs: options.inputs,
      signal: options.signal,
      emit: this.emit,
    });
    return { session, conversation, plan, cacheKey: key, saving };
  }

  /** Frees the model when this document loaded it, and what was kept of piped inputs. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.inputs.close();
    if (this.ownsModel) await this.loaded.close();
  }
}

/**
 * Inputs → (source markers) → model → tokens. Emits source, skipped, (download,) model, tokenize
 * and (with cite) markers events.
 */
export async function prepareDocument(o: DocumentOptions): Promise<PreparedDocument> {
  const emit = o.onEvent ?? ignoreEvents;
  const env = o.env ?? process.env;
  const inputs = await openInputs(o.inputs, {
    maxFileBytes: o.maxFileBytes,
    followLinks: o.followLinks,
    signal: o.signal,
    stdin: o.stdin ?? process.stdin,
    pipeWaitMs: (o.pipeWaitSeconds ?? 0) * 1000,
    holdChars: o.hold?.chars,
    spoolDir: () => join(ctxCacheDir(env), 'spool'),
    pdfTextCache: o.cache === false ? null : new PdfTextCache(pdfTextDir(env)),
    warn: (message) => emit({ type: 'warning', message }),
  });
  let ready = false;
  try {
    const prepared = await prepareInputs(o, inputs, emit, env);
    ready = true;
    return prepared;
  } finally {
    if (!ready) await inputs.close();
  }
}

async function prepareInputs(o: DocumentOptions, inputs: Inputs, emit: EventSink, env: NodeJS.ProcessEnv): Promise<PreparedDocument> {
  // The first reading checks every input before the model loads: a bad input fails at once. It
  // also tells the citation side what it needs to mark the document as it streams past later.
  const survey = new SourceMarking(o.cite ?? false);
  for await (const s of inputs.segments()) survey.see(s);
  survey.surveyed(inputs.sources);
  for (const s of inputs.sources) emit({ type: 'source', ...s });
  for (const s of inputs.skipped) emit({ type: 'skipped', ...s });

  const given = typeof o.model === 'object' ? o.model : null;
  const loaded = given ?? (await loadModel(typeof o.model === 'string' ? o.model : undefined, { backend: o.backend, dtype: o.dtype, kvDtype: o.kvDtype, threads: o.threads, softplusReweight: o.softplusReweight, env, signal: o.signal, onEvent: emit }));
  if (given) emit({ type: 'model', name: given.name, dir: given.dir, backend: given.backend.name, numeric: given.backend.numeric });
  try {
    // A model whose vocabulary cannot write a marker reads the document without them (a plan note says so).
    const off = survey.enabled ? markersOffReason(loaded.tokenizer) : null;
    const sources = off ? new SourceMarking(false, off) : survey;
    const format = promptFormat(loaded.tokenizer, o.promptFormat);
    // The document as the model reads it, with markers when cite is on; the first pass measures them.
    const segments = (signal?: AbortSignal) => sources.marked(inputs.segments(signal), loaded.tokenizer);
    const tokens = await DocumentTokens.encode(loaded.tokenizer, () => segments(), {
      totalChars: inputs.chars,
      onProgress: (doneChars, totalChars) => emit({ type: 'tokenize', doneChars, totalChars }),
      signal: o.signal,
      holdTokens: o.hold?.tokens,
      memo: o.cache === false ? null : new TokenMemo(tokenMemoDir(env), ctxCacheDir(env)),
    });
    if (tokens.count === 0) throw new CtxError('emptyInput', 'the inputs hold no text to read');
    sources.report(emit);
    return new PreparedDocument(o, inputs, segments, loaded, tokens, sources, format, given === null);
  } catch (e) {
    if (!given) await loaded.close();
    throw e;
  }
}

/**
 * Opens a document to ask about: prepareDocument, then PreparedDocument.read. `question` is the
 * first question when it is known (the plan reserves exactly its tokens).
 */
export async function openDocument(o: DocumentOptions & { question?: string }): Promise<OpenDocument> {
  const prepared = await prepareDocument(o);
  return prepared.read({ question: o.question });
}

/** The session cache for these options, or null when it is off (or on a big-endian machine). */
function openCache(o: DocumentOptions): SessionCache | null {
  if (o.cache === false || !SessionCache.supported) return null;
  const env = o.env ?? process.env;
  return new SessionCache(sessionsDir(env), { maxBytes: o.cache?.maxBytes, failWritesWith: env.CTX_TEST_CACHE_WRITE_ERROR || undefined });
}
