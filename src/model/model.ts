// A model opened for inference: its config, its weights (lazy) and its tensors by role, resolved
// and checked against the architecture's table (tensors.ts) when the model is opened. Two formats:
//   a Hugging Face folder   config.json + *.safetensors (WeightStore)        openModel (sync)
//   a GGUF file             header metadata + tensors (gguf/weights.ts)      openGgufModel (async:
//                           the header is parsed by @huggingface/gguf, which reads asynchronously)
// `openModelAt` takes either and is what the engine and the CLI call.

import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { CtxError } from '../errors.js';
import { ARCHITECTURES, readModelConfig, type ModelConfig } from './config.js';
import { ggufModelConfig } from './gguf/config.js';
import { GgufFile } from './gguf/file.js';
import { GgufWeights } from './gguf/weights.js';
import { withReweight, type SoftplusReweightChoice } from './softplus-config.js';
import { resolveTensors, type ModelTensors } from './tensors.js';
import { WeightStore, type ModelWeights } from './weights.js';

export interface Model {
  /** The model folder, or the GGUF file. */
  dir: string;
  config: ModelConfig;
  /** WeightStore (a folder's safetensors) or GgufWeights (a GGUF file). */
  weights: ModelWeights;
  /** Which tensor plays each role, model-level and per layer (tensors.ts). */
  tensors: ModelTensors;
}

export interface OpenModelOptions {
  /** Run a softplus-attention model with this re-weighting instead of its config's (softplus-config.ts). */
  softplusReweight?: SoftplusReweightChoice;
}

/** Whether `path` is a model file (GGUF) rather than a folder: resolveModelDir returns files only for GGUF models. */
export function isModelFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** A Hugging Face model folder. */
export function openModel(dir: string, o: OpenModelOptions = {}): Model {
  const abs = resolve(dir);
  if (!existsSync(abs)) throw new CtxError('model', 'model folder does not exist', { path: abs });
  if (!statSync(abs).isDirectory()) throw new CtxError('model', 'model must be a folder (config.json, *.safetensors, tokenizer.json) or a .gguf file', { path: abs });
  let config = readModelConfig(abs);
  if (o.softplusReweight !== undefined) config = { ...config, softplus: withReweight(config.softplus, o.softplusReweight, abs) };
  const weights = WeightStore.open(abs);
  const tensors = resolveTensors(ARCHITECTURES[config.arch].tensors, config, weights, abs);
  return { dir: abs, config, weights, tensors };
}

/** A GGUF file (the whole model: config, weights and tokenizer in one file). */
export async function openGgufModel(path: string, o: OpenModelOptions = {}): Promise<Model> {
  const abs = resolve(path);
  const file = await GgufFile.open(abs);
  let config = ggufModelConfig(file);
  if (o.softplusReweight !== undefined) config = { ...config, softplus: withReweight(config.softplus, o.softplusReweight, abs) };
  const weights = GgufWeights.fromFile(file, config);
  const tensors = resolveTensors(ARCHITECTURES[config.arch].tensors, config, weights, abs);
  return { dir: abs, config, weights, tensors };
}

/** A model folder or a GGUF file. */
export async function openModelAt(path: string, o: OpenModelOptions = {}): Promise<Model> {
  return isModelFile(path) ? openGgufModel(path, o) : openModel(path, o);
}

/** Only the config of a model folder or a GGUF file (no weights are checked). */
export async function loadModelConfig(path: string): Promise<ModelConfig> {
  return isModelFile(path) ? ggufModelConfig(await GgufFile.open(path)) : readModelConfig(path);
}

/** The model's safetensors weights; for code paths that read safetensors layouts (a GGUF model there is a bug). */
export function safetensorsWeights(model: Model): WeightStore {
  if (!(model.weights instanceof WeightStore)) throw new Error(`${model.dir} is not a safetensors model folder`);
  return model.weights;
}

/** The model's GGUF weights, or null for a safetensors folder. */
export function ggufWeights(model: Model): GgufWeights | null {
  return model.weights instanceof GgufWeights ? model.weights : null;
}
