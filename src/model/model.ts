// A model folder opened for inference: its config, its weights (lazy) and its tensors by role,
// resolved and checked against the architecture's table (tensors.ts) when the folder is opened.

import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { CtxError } from '../errors.js';
import { ARCHITECTURES, readModelConfig, type ModelConfig } from './config.js';
import { withReweight, type SoftplusReweightChoice } from './softplus-config.js';
import { resolveTensors, type ModelTensors } from './tensors.js';
import { WeightStore } from './weights.js';

export interface Model {
  dir: string;
  config: ModelConfig;
  weights: WeightStore;
  /** Which tensor plays each role, model-level and per layer (tensors.ts). */
  tensors: ModelTensors;
}

export interface OpenModelOptions {
  /** Run a softplus-attention model with this re-weighting instead of its config's (softplus-config.ts). */
  softplusReweight?: SoftplusReweightChoice;
}

export function openModel(dir: string, o: OpenModelOptions = {}): Model {
  const abs = resolve(dir);
  if (!existsSync(abs)) throw new CtxError('model', 'model folder does not exist', { path: abs });
  if (!statSync(abs).isDirectory()) throw new CtxError('model', 'model must be a folder (config.json, *.safetensors, tokenizer.json)', { path: abs });
  let config = readModelConfig(abs);
  if (o.softplusReweight !== undefined) config = { ...config, softplus: withReweight(config.softplus, o.softplusReweight, abs) };
  const weights = WeightStore.open(abs);
  const tensors = resolveTensors(ARCHITECTURES[config.arch].tensors, config, weights, abs);
  return { dir: abs, config, weights, tensors };
}
