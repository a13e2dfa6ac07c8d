// A model folder opened for inference: its config, its weights (lazy) and the tensor names each
// layer uses. Backends read tensors through `layerTensors` so the naming rules live here only.

import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { CtxError } from '../errors.js';
import { readModelConfig, type ModelConfig } from './config.js';
import { WeightStore } from './weights.js';

export interface Model {
  dir: string;
  config: ModelConfig;
  weights: WeightStore;
}

/** A projection's tensor names; `bias` only where the checkpoint has one. */
export interface ProjNames {
  weight: string;
  bias?: string;
}

export interface LayerTensorNames {
  inputNorm: string;
  q: ProjNames;
  k: ProjNames;
  v: ProjNames;
  o: ProjNames;
  postNorm: string;
  gate: string;
  up: string;
  down: string;
  /** Projections used for beacon rows (beacon checkpoints only). Missing ones fall back to base. */
  beacon?: { q: ProjNames; k: ProjNames; v: ProjNames; o: ProjNames };
}

export const EMBED = 'model.embed_tokens.weight';
export const BEACON_EMBED = 'model.beacon_embed_tokens.weight';
export const FINAL_NORM = 'model.norm.weight';
export const LM_HEAD = 'lm_head.weight';

export function openModel(dir: string): Model {
  const abs = resolve(dir);
  if (!existsSync(abs)) throw new CtxError('model', 'model folder does not exist', { path: abs });
  if (!statSync(abs).isDirectory()) throw new CtxError('model', 'model must be a folder (config.json, *.safetensors, tokenizer.json)', { path: abs });
  const config = readModelConfig(abs);
  const weights = WeightStore.open(abs);
  const model = { dir: abs, config, weights };
  checkTensors(model);
  return model;
}

function proj(weights: WeightStore, prefix: string): ProjNames {
  const bias = `${prefix}.bias`;
  return { weight: `${prefix}.weight`, bias: weights.has(bias) ? bias : undefined };
}

export function layerTensors(model: Model, i: number): LayerTensorNames {
  const w = model.weights;
  const p = `model.layers.${i}`;
  const base = {
    q: proj(w, `${p}.self_attn.q_proj`),
    k: proj(w, `${p}.self_attn.k_proj`),
    v: proj(w, `${p}.self_attn.v_proj`),
    o: proj(w, `${p}.self_attn.o_proj`),
  };
  // The reference's from_pretrained copies base q/k/v/o into any beacon tensor the checkpoint lacks.
  const beaconProj = (name: 'q' | 'k' | 'v' | 'o'): ProjNames => {
    const prefix = `${p}.self_attn.beacon_${name}_proj`;
    return w.has(`${prefix}.weight`) ? proj(w, prefix) : base[name];
  };
  return {
    inputNorm: `${p}.input_layernorm.weight`,
    ...base,
    postNorm: `${p}.post_attention_layernorm.weight`,
    gate: `${p}.mlp.gate_proj.weight`,
    up: `${p}.mlp.up_proj.weight`,
    down: `${p}.mlp.down_proj.weight`,
    beacon: model.config.beacon
      ? {
          q: beaconProj('q'),
          k: beaconProj('k'),
          v: beaconProj('v'),
          // Beacon rows use the base o_proj unless "o" is a beacon parameter.
          o: model.config.beacon.param.includes('o') ? beaconProj('o') : base.o,
        }
      : undefined,
  };
}

/** The tensor that maps hidden states to logits (the embedding when tied). */
export function lmHeadName(model: Model): string {
  return model.config.tieWordEmbeddings || !model.weights.has(LM_HEAD) ? EMBED : LM_HEAD;
}

/** Checks that every tensor the forward pass needs exists with the shape the config implies. */
function checkTensors(model: Model): void {
  const c = model.config;
  const w = model.weights;
  const shapes: Array<[string, number[]]> = [
    [EMBED, [c.vocabSize, c.hiddenSize]],
    [FINAL_NORM, [c.hiddenSize]],
  ];
  if (!c.tieWordEmbeddings) {
    if (!w.has(LM_HEAD)) throw new CtxError('model', `weights lack "${LM_HEAD}" and tie_word_embeddings is false`, { path: model.dir });
    shapes.push([LM_HEAD, [c.vocabSize, c.hiddenSize]]);
  }
  if (c.beacon) shapes.push([BEACON_EMBED, [1, c.hiddenSize]]);
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  for (let i = 0; i < c.numLayers; i++) {
    const t = layerTensors(model, i);
    const projs: Array<[ProjNames, number]> = [[t.q, qDim], [t.k, kvDim], [t.v, kvDim]];
    if (t.beacon) projs.push([t.beacon.q, qDim], [t.beacon.k, kvDim], [t.beacon.v, kvDim]);
    for (const [p, out] of projs) {
      shapes.push([p.weight, [out, c.hiddenSize]]);
      if (p.bias) shapes.push([p.bias, [out]]);
    }
    shapes.push(
      [t.o.weight, [c.hiddenSize, qDim]],
      [t.inputNorm, [c.hiddenSize]],
      [t.postNorm, [c.hiddenSize]],
      [t.gate, [c.intermediateSize, c.hiddenSize]],
      [t.up, [c.intermediateSize, c.hiddenSize]],
      [t.down, [c.hiddenSize, c.intermediateSize]],
    );
    if (t.beacon) shapes.push([t.beacon.o.weight, [c.hiddenSize, qDim]]);
  }
  for (const [name, shape] of shapes) {
    if (!w.has(name)) throw new CtxError('model', `weights lack tensor "${name}"`, { path: model.dir });
    const got = w.info(name).shape;
    if (got.length !== shape.length || got.some((d, k) => d !== shape[k])) {
      throw new CtxError('model', `tensor "${name}" has shape [${got}] but config.json implies [${shape}]`, { path: w.info(name).file });
    }
  }
}
