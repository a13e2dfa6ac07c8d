// Token embeddings, read on demand: each step reads only its n rows of the embedding table from
// the model's safetensors file (positioned reads; F16/BF16 rows converted to float32), so the
// table (544 MB for Qwen2.5-0.5B in float32) is never held in memory by this backend. A GGUF
// model's rows are read from its file and dequantized one by one (GgufWeights.gatherRows: the
// quantized table is never expanded).

import { closeSync, openSync, readSync } from 'node:fs';
import { CtxError, fsError } from '../../errors.js';
import type { GgufWeights } from '../../model/gguf/weights.js';
import { ggufWeights, safetensorsWeights, type Model } from '../../model/model.js';
import { DTYPE_BYTES, toFloat32, type TensorInfo } from '../../model/safetensors.js';

export class Embedding {
  private readonly info: TensorInfo | null = null;
  private readonly fd: number = -1;
  private readonly rowBytes: number = 0;
  private readonly buf: Buffer = Buffer.alloc(0);
  /** A GGUF model's weights and the embedding's name there (rows come from gatherRows). */
  private readonly gguf: { weights: GgufWeights; name: string } | null = null;
  /** The beacon embedding row (beacon checkpoints). */
  readonly beacon: Float32Array | null;

  constructor(model: Model) {
    const top = model.tensors.model;
    this.beacon = top.beaconEmbed ? model.weights.float32(top.beaconEmbed.tensors.weight.name) : null;
    const gguf = ggufWeights(model);
    if (gguf) {
      this.gguf = { weights: gguf, name: top.embed.tensors.weight.name };
      return;
    }
    this.info = safetensorsWeights(model).info(top.embed.tensors.weight.name);
    const H = model.config.hiddenSize;
    this.rowBytes = H * DTYPE_BYTES[this.info.dtype];
    this.buf = Buffer.allocUnsafe(this.rowBytes);
    try {
      this.fd = openSync(this.info.file, 'r');
    } catch (e) {
      throw fsError(e, this.info.file, 'model');
    }
  }

  /** Writes the embedding of token `id` into out[offset .. offset + H). */
  row(id: number, out: Float32Array, offset: number): void {
    if (this.gguf) {
      out.set(this.gguf.weights.gatherRows(this.gguf.name, [id]), offset);
      return;
    }
    const info = this.info!;
    let done = 0;
    while (done < this.rowBytes) {
      const n = readSync(this.fd, this.buf, done, this.rowBytes - done, info.offset + id * this.rowBytes + done);
      if (n === 0) throw new CtxError('model', `unexpected end of file reading embedding row ${id}`, { path: info.file });
      done += n;
    }
    out.set(toFloat32({ ...info, byteLength: this.rowBytes }, this.buf), offset);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
  }
}
