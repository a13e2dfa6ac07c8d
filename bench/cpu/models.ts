// The benchmark's models, made once under bench/work/cpu/ (gitignored):
//   qwen2.5-0.5b/          random weights in the shape of Qwen2.5-0.5B (tools/random-model.ts preset)
//   qwen2.5-0.5b-beacon/   the same weights plus beacon q/k/v projections and embedding (v3
//                          interleave, window 2048, ratios 2/4/8) — the beacon variant of that model
//   qwen2.5-0.5b-f32.gguf, qwen2.5-0.5b-q8_0.gguf   the same weights for llama.cpp (gguf.ts)

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openModel } from '../../src/model/model.js';
import { writeSafetensors, type TensorToWrite } from '../../src/model/safetensors-write.js';
import { mulberry32 } from '../../src/demo/rng.js';
import { beaconConfigKeys, normal, PRESETS, writeRandomModel } from '../../tools/random-model.js';
import { writeQwen2Gguf } from './gguf.js';

export interface BenchModels {
  plain: string;
  beacon: string;
  ggufF32: string;
  ggufQ8: string;
}

/** Copies `plainDir` and adds beacon tensors (same init scheme as tools/random-model.ts). */
function writeBeaconVariant(plainDir: string, dir: string): void {
  const model = openModel(plainDir);
  const c = model.config;
  const rand = mulberry32(7);
  const tensors: TensorToWrite[] = model.weights.names().map((name) => ({ name, shape: model.weights.info(name).shape, data: model.weights.float32(name) }));
  const H = c.hiddenSize;
  const lin = 1.6 / Math.sqrt(H);
  tensors.push({ name: 'model.beacon_embed_tokens.weight', shape: [1, H], data: normal(rand, H, 1) });
  for (let l = 0; l < c.numLayers; l++) {
    for (const [k, out] of [['q', c.numHeads * c.headDim], ['k', c.numKvHeads * c.headDim], ['v', c.numKvHeads * c.headDim]] as const) {
      const p = `model.layers.${l}.self_attn.beacon_${k}_proj`;
      tensors.push({ name: `${p}.weight`, shape: [out, H], data: normal(rand, out * H, lin) });
      tensors.push({ name: `${p}.bias`, shape: [out], data: normal(rand, out, 0.2) });
    }
  }
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, 'model.safetensors'), tensors);
  const config = JSON.parse(readFileSync(join(plainDir, 'config.json'), 'utf8'));
  Object.assign(config, beaconConfigKeys({ version: 'v3', window: 2048, ratios: [2, 4, 8] }));
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}

export function prepareModels(work: string, tokenizerJson: string, log: (s: string) => void): BenchModels {
  const m: BenchModels = {
    plain: join(work, 'qwen2.5-0.5b'),
    beacon: join(work, 'qwen2.5-0.5b-beacon'),
    ggufF32: join(work, 'qwen2.5-0.5b-f32.gguf'),
    ggufQ8: join(work, 'qwen2.5-0.5b-q8_0.gguf'),
  };
  if (!existsSync(join(m.plain, 'config.json'))) {
    log(`writing ${m.plain}`);
    writeRandomModel(m.plain, { ...PRESETS['qwen2.5-0.5b'], seed: 1 });
  }
  if (!existsSync(join(m.beacon, 'config.json'))) {
    log(`writing ${m.beacon}`);
    writeBeaconVariant(m.plain, m.beacon);
  }
  for (const [path, type] of [[m.ggufF32, 'F32'], [m.ggufQ8, 'Q8_0']] as const) {
    if (!existsSync(path)) {
      log(`writing ${path}`);
      writeQwen2Gguf(openModel(m.plain), path, type, tokenizerJson);
    }
  }
  return m;
}
