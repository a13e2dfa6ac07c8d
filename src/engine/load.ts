// Opening a model for a run: config + weights, tokenizer, backend.

import { createBackend, type BackendChoice } from '../backend/index.js';
import { openModel } from '../model/model.js';
import { loadTokenizer, StreamingDetokenizer } from '../model/tokenizer.js';
import type { Engine } from './reader.js';

export interface LoadOptions {
  backend?: BackendChoice;
  dtype?: string;
  threads?: number;
  /** Told when the chosen backend falls back to another. */
  onNotice?: (message: string) => void;
}

export async function loadEngine(modelDir: string, o: LoadOptions = {}): Promise<Engine> {
  const model = openModel(modelDir);
  const tokenizer = await loadTokenizer(model.dir, { eosIds: model.config.eosTokenIds });
  const backend = await createBackend(o.backend ?? 'auto', model, { dtype: o.dtype, threads: o.threads }, o.onNotice);
  return { model, tokenizer, backend, detokenizer: () => new StreamingDetokenizer(tokenizer) };
}
