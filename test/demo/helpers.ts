// A trained demo model (or variant) opened for a test: model, tokenizer and a cpu backend.
import type { Backend } from '../../src/backend/contract.js';
import { openModel, type Model, type OpenModelOptions } from '../../src/model/model.js';
import { loadTokenizer, type TextTokenizer } from '../../src/model/tokenizer.js';
import { cpuBackend } from '../backend/cpu/helpers.js';

export interface Loaded {
  model: Model;
  tokenizer: TextTokenizer;
  backend: Backend;
}

export async function loadOnCpu(dir: string, options?: OpenModelOptions): Promise<Loaded> {
  const model = openModel(dir, options);
  return { model, tokenizer: await loadTokenizer(model.dir, { eosIds: model.config.eosTokenIds }), backend: await cpuBackend(model) };
}
