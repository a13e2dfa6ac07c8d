// Token embeddings, read on demand: each step reads only its n rows, so the table (136M values
// for Qwen2.5-0.5B) is never held in memory by this backend.
//   f32 mode     rows of the model's safetensors (positioned reads; F16/BF16 rows → float32)
//   q8/q4 modes  rows of the 8-bit table in weights.bin (weights.ts, `layout.embedTable`; for tied
//                weights in q8 it is the LM head's own codes): row id = codes [nb, block] and
//                scales [nb], value = (code − 128) · scale of its block, so no float copy of the
//                table is ever read
//   GGUF         rows of the file, dequantized one by one (GgufWeights.gatherRows: the quantized
//                table is never expanded)

import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { CtxError, fsError } from '../../errors.js';
import type { GgufWeights } from '../../model/gguf/weights.js';
import { ggufWeights, safetensorsWeights, type Model } from '../../model/model.js';
import { DTYPE_BYTES, toFloat32, type TensorInfo } from '../../model/safetensors.js';
import type { ConvertedWeights } from './weights.js';

/** Where one row's bytes are: a file and how to turn the bytes into H floats. */
interface RowSource {
  file: string;
  /** Reads row `id` into out[offset .. offset + H). */
  read(fd: number, id: number, out: Float32Array, offset: number): void;
}

function readFully(fd: number, file: string, buf: Buffer, position: number): void {
  for (let done = 0; done < buf.length; ) {
    const n = readSync(fd, buf, done, buf.length - done, position + done);
    if (n === 0) throw new CtxError('model', `unexpected end of file reading an embedding row at byte ${position}`, { path: file });
    done += n;
  }
}

/** Rows of a safetensors table in its own dtype. */
function safetensorsRows(info: TensorInfo, H: number): RowSource {
  const rowBytes = H * DTYPE_BYTES[info.dtype];
  const buf = Buffer.allocUnsafe(rowBytes);
  return {
    file: info.file,
    read(fd, id, out, offset) {
      readFully(fd, info.file, buf, info.offset + id * rowBytes);
      out.set(toFloat32({ ...info, byteLength: rowBytes }, buf), offset);
    },
  };
}

/** Rows of an 8-bit table in weights.bin: codes [vocab, nb, block] and scales [vocab · nb]. */
function eightBitRows(weights: ConvertedWeights, name: string, H: number): RowSource {
  const { layout, dir } = weights;
  const q = layout.tensors[`${name}.q`];
  const s = layout.tensors[`${name}.scales`];
  const format = layout.formats?.[name];
  if (!q || !s || format?.bits !== 8) throw new Error(`converted weights lack the 8-bit table "${name}"`);
  const { block } = format;
  const nb = q.dims[1];
  const file = join(dir, layout.file);
  const codes = Buffer.allocUnsafe(nb * block);
  const scaleBytes = Buffer.allocUnsafe(nb * 4);
  const scales = new Float32Array(scaleBytes.buffer, scaleBytes.byteOffset, nb);
  return {
    file,
    read(fd, id, out, offset) {
      readFully(fd, file, codes, q.offset + id * nb * block);
      readFully(fd, file, scaleBytes, s.offset + id * nb * 4);
      for (let i = 0; i < H; i++) out[offset + i] = (codes[i] - 128) * scales[(i / block) | 0];
    },
  };
}

export class Embedding {
  /** Where rows come from: a file read with `fd`, or (GGUF) the model's weights. */
  private readonly source: RowSource | null = null;
  private readonly fd: number = -1;
  /** A GGUF model's weights and the embedding's name there (rows come from gatherRows). */
  private readonly gguf: { weights: GgufWeights; name: string } | null = null;
  /** The beacon embedding row (beacon checkpoints). */
  readonly beacon: Float32Array | null;

  /** `weights` with an 8-bit table: rows come from it; otherwise from the model's safetensors. */
  constructor(model: Model, weights?: ConvertedWeights) {
    const top = model.tensors.model;
    this.beacon = top.beaconEmbed ? model.weights.float32(top.beaconEmbed.tensors.weight.name) : null;
    const gguf = ggufWeights(model);
    if (gguf) {
      this.gguf = { weights: gguf, name: top.embed.tensors.weight.name };
      return;
    }
    const H = model.config.hiddenSize;
    const table = weights?.layout.embedTable;
    this.source = table ? eightBitRows(weights!, table, H) : safetensorsRows(safetensorsWeights(model).info(top.embed.tensors.weight.name), H);
    try {
      this.fd = openSync(this.source.file, 'r');
    } catch (e) {
      throw fsError(e, this.source.file, 'model');
    }
  }

  /** Writes the embedding of token `id` into out[offset .. offset + H). */
  row(id: number, out: Float32Array, offset: number): void {
    if (this.gguf) {
      out.set(this.gguf.weights.gatherRows(this.gguf.name, [id]), offset);
      return;
    }
    this.source!.read(this.fd, id, out, offset);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
  }
}
