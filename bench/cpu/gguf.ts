// The benchmark's llama.cpp files: the same random Qwen2 weights ctx reads from safetensors, written
// as GGUF (src/model/gguf/from-model.ts) in F32 or Q8_0 for every matrix (vectors stay F32), with
// the model's real tokenizer in the metadata.

import type { Model } from '../../src/model/model.js';
import { bpeTokenizerMetadata, writeModelGguf } from '../../src/model/gguf/from-model.js';

/** Writes the Qwen2 `model` as GGUF (`F32` or `Q8_0` for every matrix; vectors stay F32). */
export function writeQwen2Gguf(model: Model, path: string, type: 'F32' | 'Q8_0', tokenizerJson: string): void {
  const c = model.config;
  if (c.arch !== 'qwen2') throw new Error(`the benchmark's GGUF files are qwen2 models, not ${c.arch}`);
  writeModelGguf(model, path, {
    name: 'ctx-bench random qwen2',
    typeOf: (_name, shape) => (shape.length === 2 ? type : 'F32'),
    tokenizer: bpeTokenizerMetadata(tokenizerJson, c.vocabSize, 'qwen2'),
  });
}
