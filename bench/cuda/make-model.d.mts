// Types for make-model.mjs (imported by test/cuda).
export interface SparseModelShape {
  vocab: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  maxPositions: number;
  ropeTheta: number;
}
export const QWEN2_7B: SparseModelShape;
export function writeSparseModel(dir: string, shape?: SparseModelShape): { file: string; bytes: number };
