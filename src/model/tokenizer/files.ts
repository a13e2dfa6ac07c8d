// The files of a model folder that describe its tokenizer: tokenizer.json (required) and
// tokenizer_config.json (special tokens, chat template; absent counts as {}), plus config.json and
// generation_config.json for BOS/EOS ids. Errors name the file.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CtxError, fsError } from '../../errors.js';
import type { Json } from './library.js';

export function readJson(path: string, required: boolean): Json | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (!required && (e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw fsError(e, path, 'model');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw new CtxError('model', `not valid JSON (${(e as Error).message})`, { path });
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new CtxError('model', 'not a JSON object', { path });
  return value as Json;
}

export interface TokenizerFiles {
  json: Json;
  config: Json;
  jsonPath: string;
}

/** The two tokenizer files of a model folder, parsed. */
export function readTokenizerFiles(dir: string): TokenizerFiles {
  const jsonPath = join(dir, 'tokenizer.json');
  if (!existsSync(jsonPath)) {
    const hint = existsSync(join(dir, 'tokenizer.model'))
      ? ' (only a sentencepiece tokenizer.model is there; ctx needs the Hugging Face tokenizer.json)'
      : '';
    throw new CtxError('model', `no tokenizer.json in the model folder${hint}`, { path: dir });
  }
  const json = readJson(jsonPath, true)!;
  if (!json.model || typeof json.model !== 'object') throw new CtxError('model', 'tokenizer.json has no "model" section', { path: jsonPath });
  const config = readJson(join(dir, 'tokenizer_config.json'), false) ?? {};
  return { json, config, jsonPath };
}
