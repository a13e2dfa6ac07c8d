// A model folder's weights: one model.safetensors, or shards listed by model.safetensors.index.json.
// Tensors are read lazily by name; nothing is loaded until a backend asks for it.

import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { CtxError, fsError } from '../errors.js';
import { fileSha256 } from './content-hash.js';
import { readTensorBytes, SafetensorsFile, toFloat32, type TensorInfo } from './safetensors.js';

/**
 * What the model layer reads weights through, whatever the format: this folder's safetensors
 * (WeightStore) or a GGUF file (gguf/weights.ts). `dir` is the folder, or the GGUF file's path.
 */
export interface ModelWeights {
  readonly dir: string;
  has(name: string): boolean;
  /** Shape in Hugging Face order ([out, in]); `dtype` is the stored type ("BF16", "Q4_K", ...). */
  info(name: string): { name: string; dtype: string; shape: number[]; file: string; byteLength: number };
  names(): string[];
  float32(name: string, shape?: number[]): Float32Array;
  totalBytes(): number;
  /** The weights' identity (full-content hashes: content-hash.ts); `signal` stops the hashing. */
  fingerprint(signal?: AbortSignal): Promise<string>;
}

export class WeightStore implements ModelWeights {
  readonly dir: string;
  readonly files: SafetensorsFile[];
  private readonly byName = new Map<string, TensorInfo>();
  private identity: string | null = null;

  private constructor(dir: string, files: SafetensorsFile[]) {
    this.dir = dir;
    this.files = files;
    for (const f of files) {
      for (const [name, info] of f.tensors) {
        if (this.byName.has(name)) throw new CtxError('model', `tensor "${name}" appears in two shards`, { path: f.path });
        this.byName.set(name, info);
      }
    }
  }

  static open(dir: string): WeightStore {
    const index = join(dir, 'model.safetensors.index.json');
    if (existsSync(index)) {
      let map: Record<string, string>;
      try {
        const parsed = JSON.parse(readFileSync(index, 'utf8'));
        map = parsed.weight_map;
        if (!map || typeof map !== 'object') throw new Error('no "weight_map" object');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code) throw fsError(e, index, 'model');
        throw new CtxError('model', `invalid shard index (${(e as Error).message})`, { path: index });
      }
      const shardNames = [...new Set(Object.values(map))].sort();
      for (const s of shardNames) {
        if (typeof s !== 'string' || s.includes('/') || s.includes('\\') || s.startsWith('.')) {
          throw new CtxError('model', `shard name ${JSON.stringify(s)} is not a plain file name`, { path: index });
        }
      }
      const store = new WeightStore(dir, shardNames.map((s) => SafetensorsFile.open(join(dir, s))));
      for (const [name, shard] of Object.entries(map)) {
        const info = store.byName.get(name);
        if (!info || !info.file.endsWith(shard)) {
          throw new CtxError('model', `index lists tensor "${name}" in ${shard}, which does not hold it`, { path: index });
        }
      }
      return store;
    }
    const single = join(dir, 'model.safetensors');
    if (!existsSync(single)) {
      throw new CtxError('model', 'no model.safetensors or model.safetensors.index.json in the model folder', { path: dir });
    }
    return new WeightStore(dir, [SafetensorsFile.open(single)]);
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  info(name: string): TensorInfo {
    const t = this.byName.get(name);
    if (!t) throw new CtxError('model', `the weights have no tensor "${name}"`, { path: this.dir });
    return t;
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  /** The tensor as float32 (converted from F16/BF16), with its shape checked when given. */
  float32(name: string, shape?: number[]): Float32Array {
    const t = this.info(name);
    if (shape && (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))) {
      throw new CtxError('model', `tensor "${name}" has shape [${t.shape}] but the config implies [${shape}]`, { path: t.file });
    }
    return toFloat32(t, readTensorBytes(t));
  }

  totalBytes(): number {
    let n = 0;
    for (const t of this.byName.values()) n += t.byteLength;
    return n;
  }

  /**
   * The weights' identity: sha256 over each shard's file name and full-content SHA-256
   * (content-hash.ts: computed once per file and remembered). Keys the converted-weights cache and
   * the session cache, so two models that differ anywhere never share either.
   */
  async fingerprint(signal?: AbortSignal): Promise<string> {
    if (this.identity === null) {
      const h = createHash('sha256');
      for (const f of this.files) {
        let sha: string;
        try {
          sha = await fileSha256(f.path, { signal });
        } catch (e) {
          if (signal?.aborted) throw e;
          throw fsError(e, f.path, 'model');
        }
        h.update(`${basename(f.path)}\0${sha}\n`);
      }
      this.identity = h.digest('hex');
    }
    return this.identity;
  }
}
