// Token embeddings, read on demand: each step reads only its n rows of the embedding table from
// the model's safetensors file (positioned reads; F16/BF16 rows converted to float32), so the
// table (544 MB for Qwen2.5-0.5B in float32) is never held in memory by this backend.

import { closeSync, openSync, readSync } from 'node:fs';
import { CtxError, fsError } from '../../errors.js';
import type { Model } from '../../model/model.js';
import { DTYPE_BYTES, toFloat32, type TensorInfo } from '../../model/safetensors.js';

export class Embedding {
  private readonly info: TensorInfo;
  private readonly fd: number;
  private readonly rowBytes: number;
  private readonly buf: Buffer;
  /** The beacon embedding row (beacon checkpoints). */
  readonly beacon: Float32Array | null;

  constructor(model: Model) {
    const top = model.tensors.model;
    this.info = model.weights.info(top.embed.tensors.weight.name);
    const H = model.config.hiddenSize;
    this.rowBytes = H * DTYPE_BYTES[this.info.dtype];
    this.buf = Buffer.allocUnsafe(this.rowBytes);
    try {
      this.fd = openSync(this.info.file, 'r');
    } catch (e) {
      throw fsError(e, this.info.file, 'model');
    }
    this.beacon = top.beaconEmbed ? model.weights.float32(top.beaconEmbed.tensors.weight.name) : null;
  }

  /** Writes the embedding of token `id` into out[offset .. offset + H). */
  row(id: number, out: Float32Array, offset: number): void {
    let done = 0;
    while (done < this.rowBytes) {
      const n = readSync(this.fd, this.buf, done, this.rowBytes - done, this.info.offset + id * this.rowBytes + done);
      if (n === 0) throw new CtxError('model', `unexpected end of file reading embedding row ${id}`, { path: this.info.file });
      done += n;
    }
    out.set(toFloat32({ ...this.info, byteLength: this.rowBytes }, this.buf), offset);
  }

  close(): void {
    closeSync(this.fd);
  }
}
