// GGUF fixtures for the tests: tiny random models (tools/random-model.ts) written as GGUF in any
// type, in a temp folder removed when the process exits. Rows are 256 values wide so that every
// type, the 256-value K-quant blocks included, can store every matrix.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelRopeScaling } from '../../../src/model/config.js';
import { writeModelGguf, type GgufExportOptions } from '../../../src/model/gguf/from-model.js';
import type { SupportedType } from '../../../src/model/gguf/ggml-types.js';
import { gv, type GgufValue } from '../../../src/model/gguf/write.js';
import { openModel, type Model } from '../../../src/model/model.js';
import { writeRandomModel, type RandomModelSpec } from '../../../tools/random-model.js';

let root: string | undefined;

export function scratchDir(): string {
  if (!root) {
    root = mkdtempSync(join(tmpdir(), 'ctx-gguf-test-'));
    const r = root;
    process.on('exit', () => rmSync(r, { recursive: true, force: true }));
  }
  return root;
}

let counter = 0;
export function scratchPath(name: string): string {
  return join(scratchDir(), `${counter++}-${name}`);
}

/** A random model folder whose matrices have 256-value rows (hidden 256, intermediate 512). */
export function wideModel(arch: 'qwen2' | 'llama', overrides: Partial<RandomModelSpec> = {}, ropeScaling?: ModelRopeScaling): Model {
  const dir = scratchPath(`${arch}-model`);
  writeRandomModel(dir, { arch, vocab: 300, hidden: 256, intermediate: 512, layers: 2, heads: 4, kvHeads: 2, maxPositions: 256, ...overrides });
  const model = openModel(dir);
  if (ropeScaling) model.config.ropeScaling = ropeScaling;
  return model;
}

/** A minimal tokenizer section (llama.cpp needs one to load a file; these tests do not tokenize). */
export function plainTokenizer(size: number): Record<string, GgufValue> {
  return {
    'tokenizer.ggml.model': gv.str('gpt2'),
    'tokenizer.ggml.pre': gv.str('default'),
    'tokenizer.ggml.tokens': gv.strings(Array.from({ length: size }, (_, i) => (i < 256 ? String.fromCharCode(0x100 + i) : `t${i}`))),
    'tokenizer.ggml.token_type': gv.i32s(Array(size).fill(1)),
    'tokenizer.ggml.merges': gv.strings([]),
    'tokenizer.ggml.bos_token_id': gv.u32(1),
    'tokenizer.ggml.eos_token_id': gv.u32(2),
  };
}

/** Writes `model` as GGUF with every matrix of `type` (vectors F32) and returns the path. */
export function writeFixture(model: Model, type: SupportedType, opts: Partial<GgufExportOptions> = {}): string {
  const path = scratchPath(`${model.config.arch}-${type}.gguf`);
  writeModelGguf(model, path, {
    typeOf: (_name, shape) => (shape.length === 2 ? type : 'F32'),
    tokenizer: plainTokenizer(model.config.vocabSize),
    ...opts,
  });
  return path;
}
