// TokenSelect's two per-layer loops in the native addon (native/src/select_kernels.h), when the
// loaded addon has them: the soft vote with its top k (vote.ts), and the rows attention reads —
// gathered, cast to float32 and rotated (keys.ts). Both read the KV store's arrays in place and run
// synchronously on up to `threads` threads. Without them (no addon, or one built before them) the
// ONNX Runtime graphs in vote.ts and keys.ts compute the same.
//
// Why native: at 32K tokens the vote graph cast every stored key to float32 and materialized a
// [G, nc] score matrix per KV head (43% of a decoded token's time with `select`), the gather graph
// took another 24%; the loops here read each f16 key once and share it across the G query heads
// of its group.

import { loadAddon, type Addon } from '../native/addon.js';

export interface NativeSelect {
  softVoteTopK: NonNullable<Addon['softVoteTopK']>;
  gatherRotated: NonNullable<Addon['gatherRotated']>;
  /** The cpu backend's thread count (its sessions' intra-op threads). */
  threads: number;
}

/** The addon's loops, or null when the addon is absent or lacks them (CTX_NATIVE_ADDON can point elsewhere). */
export function nativeSelect(threads: number): NativeSelect | null {
  const addon = loadAddon();
  if (!addon?.softVoteTopK || !addon.gatherRotated) return null;
  return { softVoteTopK: addon.softVoteTopK, gatherRotated: addon.gatherRotated, threads };
}
