// A model ready to run: its config and weights (model/), its tokenizer, and the backend the weights
// were loaded onto. One is loaded per run and shared by every document and question of that run.
//
// The name given may be a model folder, a GGUF file (a .gguf path, ollama:NAME, lms:PUBLISHER/MODEL)
// or a name from the registry (models/registry.json); a registry model is downloaded on first use,
// with progress reported as `download` events.

import { createBackend, type BackendChoice } from '../backend/index.js';
import type { Backend } from '../backend/contract.js';
import { ggufWeights, openModelAt, type Model } from '../model/model.js';
import type { SoftplusReweightChoice } from '../model/softplus-config.js';
import { DEFAULT_MODEL } from '../model/registry.js';
import { resolveModelDir } from '../model/resolve.js';
import { loadTokenizer, StreamingDetokenizer, type TextTokenizer } from '../model/tokenizer.js';
import type { RunEvent } from './events.js';

export interface LoadedModel {
  /** The model as named (a registry name or a folder), and its folder. */
  name: string;
  dir: string;
  model: Model;
  tokenizer: TextTokenizer;
  backend: Backend;
  /** Makes a fresh streaming detokenizer (never emits half a character). */
  detokenizer: () => StreamingDetokenizer;
  /** Frees the backend (its weights and sessions). */
  close: () => Promise<void>;
}

export interface LoadModelOptions {
  /** Where the math runs; 'auto' picks cuda when a GPU is usable, else cpu. */
  backend?: BackendChoice;
  /** Weight precision: f32, q8 (cpu), bf16 (cuda). */
  dtype?: string;
  /** KV storage on the cpu backend: f16 (default) or f32. */
  kvDtype?: string;
  /** CPU threads (cpu backend). */
  threads?: number;
  /** Softplus-attention models: run LSSA ('off') or LSSAR with this power instead of the config's. */
  softplusReweight?: SoftplusReweightChoice;
  /** Where the model cache and the hub settings come from (CTX_CACHE_DIR, CTX_HF_ENDPOINT…). Default process.env. */
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  /** Receives `download`, `warning` (a backend falling back to another) and `model` events. */
  onEvent?: (e: RunEvent) => void;
}

/** Resolves (downloading when needed) and loads a model; `name` defaults to ctx's default model. */
export async function loadModel(name: string = DEFAULT_MODEL, o: LoadModelOptions = {}): Promise<LoadedModel> {
  const emit = o.onEvent ?? (() => {});
  const dir = await resolveModelDir(name, {
    download: true,
    env: o.env ?? process.env,
    signal: o.signal,
    onProgress: (p) => emit({ type: 'download', file: p.file, done: p.done, total: p.total }),
  });
  const loaded = await loadModelDir(dir, { ...o, onNotice: (message) => emit({ type: 'warning', message }) });
  const result = { ...loaded, name };
  emit({ type: 'model', name, dir, backend: result.backend.name, numeric: result.backend.numeric });
  return result;
}

/** Loads the model in a folder or a GGUF file (no registry, no download). */
export async function loadModelDir(dir: string, o: Pick<LoadModelOptions, 'backend' | 'dtype' | 'kvDtype' | 'threads' | 'softplusReweight' | 'signal'> & { onNotice?: (message: string) => void } = {}): Promise<LoadedModel> {
  const model = await openModelAt(dir, { softplusReweight: o.softplusReweight });
  const tokenizer = await loadTokenizer(model.dir, { eosIds: model.config.eosTokenIds, ggufFile: ggufWeights(model)?.file });
  const backend = await createBackend(o.backend ?? 'auto', model, { dtype: o.dtype, kvDtype: o.kvDtype, threads: o.threads, signal: o.signal }, o.onNotice);
  return {
    name: dir,
    dir,
    model,
    tokenizer,
    backend,
    detokenizer: () => new StreamingDetokenizer(tokenizer),
    close: () => backend.dispose(),
  };
}
