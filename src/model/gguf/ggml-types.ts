// The ggml tensor types a GGUF file can hold, and the ones ctx reads.
//
// A ggml tensor is stored row by row along ne[0] (its fastest dimension) in blocks: `blockValues`
// consecutive values of one row are packed into `blockBytes` bytes. ne[0] must therefore be a
// multiple of blockValues. The type ids are ggml's `enum ggml_type`; ids a file may use but ctx
// does not read are named, so a refusal can say which type it met.

export type SupportedType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q4_K' | 'Q5_K' | 'Q6_K';

export interface BlockLayout {
  id: number;
  /** Values per block. */
  blockValues: number;
  /** Bytes per block. */
  blockBytes: number;
}

/** Values per K-quant super-block (ggml's QK_K). */
export const SUPER_BLOCK = 256;

export const GGML_TYPES: Record<SupportedType, BlockLayout> = {
  F32: { id: 0, blockValues: 1, blockBytes: 4 },
  F16: { id: 1, blockValues: 1, blockBytes: 2 },
  BF16: { id: 30, blockValues: 1, blockBytes: 2 },
  // f16 scale d, 32 int8 codes.
  Q8_0: { id: 8, blockValues: 32, blockBytes: 34 },
  // f16 scale d, 16 bytes of 4-bit codes.
  Q4_0: { id: 2, blockValues: 32, blockBytes: 18 },
  // f16 scale d, f16 offset m, 16 bytes of 4-bit codes.
  Q4_1: { id: 3, blockValues: 32, blockBytes: 20 },
  // f16 d, 4 bytes holding the fifth bit of every code, 16 bytes of low 4 bits. Q5_0 and Q5_1 are
  // what llama.cpp stores a K-quant's matrices in when their rows are not a multiple of 256 values
  // (Qwen2.5-0.5B's 896: its Q4_K_M file is mostly Q5_0 and Q8_0).
  Q5_0: { id: 6, blockValues: 32, blockBytes: 22 },
  // as Q5_0, with an f16 offset m after d.
  Q5_1: { id: 7, blockValues: 32, blockBytes: 24 },
  // f16 d, f16 dmin, 12 bytes of 6-bit sub-block scales and mins, 128 bytes of 4-bit codes.
  Q4_K: { id: 12, blockValues: SUPER_BLOCK, blockBytes: 144 },
  // as Q4_K, plus 32 bytes holding the fifth bit of every code.
  Q5_K: { id: 13, blockValues: SUPER_BLOCK, blockBytes: 176 },
  // 128 bytes of low 4 bits, 64 bytes of high 2 bits, 16 int8 sub-block scales, f16 d.
  Q6_K: { id: 14, blockValues: SUPER_BLOCK, blockBytes: 210 },
};

/** Every type id ggml defines (for messages), whether ctx reads it or not. */
const TYPE_NAMES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 8: 'Q8_0', 9: 'Q8_1',
  10: 'Q2_K', 11: 'Q3_K', 12: 'Q4_K', 13: 'Q5_K', 14: 'Q6_K', 15: 'Q8_K',
  16: 'IQ2_XXS', 17: 'IQ2_XS', 18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S',
  23: 'IQ4_XS', 24: 'I8', 25: 'I16', 26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 30: 'BF16',
  34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};

const BY_ID = new Map<number, SupportedType>(Object.entries(GGML_TYPES).map(([name, l]) => [l.id, name as SupportedType]));

/** The supported type with this id, or undefined. */
export function supportedType(id: number): SupportedType | undefined {
  return BY_ID.get(id);
}

/** A human name for a type id: "Q3_K", or "type 77" for ids ggml does not define. */
export function typeName(id: number): string {
  return TYPE_NAMES[id] ?? `type ${id}`;
}

export const SUPPORTED_TYPE_NAMES = Object.keys(GGML_TYPES) as SupportedType[];

/** Bytes of `values` values of `type` (values a multiple of the block size). */
export function typeBytes(type: SupportedType, values: number): number {
  const l = GGML_TYPES[type];
  return (values / l.blockValues) * l.blockBytes;
}
