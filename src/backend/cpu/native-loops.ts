// The cpu backend's per-layer loops in the native addon, when the loaded addon has them:
//   softVoteTopK   TokenSelect's soft vote with its top k (vote.ts; native/src/select_kernels.h)
//   gatherRotated  the rows attention reads — gathered, cast to float32 and rotated (keys.ts; same file)
//   attendCausal   a decoded row's attention (attention.ts; native/src/attention_rows.h)
// They read the KV store's arrays (or the step's float32 keys) in place and run synchronously on up
// to `threads` threads. Without them (no addon, or one built before them) the ONNX Runtime graphs in
// vote.ts, keys.ts and attention.ts compute the same.
//
// Why native: at 32K tokens the vote graph cast every stored key to float32 and materialized a
// [G, nc] score matrix per KV head (43% of a decoded token's time with `select`), the gather graph
// took another 24%; the loops here read each f16 key once and share it across the G query heads
// of its group.

import { loadAddon, type Addon } from '../native/addon.js';

export interface NativeLoops {
  softVoteTopK: NonNullable<Addon['softVoteTopK']>;
  gatherRotated: NonNullable<Addon['gatherRotated']>;
  attendCausal: NonNullable<Addon['attendCausal']>;
  /** The cpu backend's thread count (its sessions' intra-op threads). */
  threads: number;
}

/** The addon's loops, or null when the addon is absent or lacks them (CTX_NATIVE_ADDON can point elsewhere). */
export function nativeLoops(threads: number): NativeLoops | null {
  const addon = loadAddon();
  if (!addon?.softVoteTopK || !addon.gatherRotated || !addon.attendCausal) return null;
  return { softVoteTopK: addon.softVoteTopK, gatherRotated: addon.gatherRotated, attendCausal: addon.attendCausal, threads };
}
