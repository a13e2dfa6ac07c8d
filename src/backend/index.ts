// Backend selection: the one place that knows which backends exist and which one `auto` picks.
//
// auto → cpu (onnxruntime), the default without a GPU. `cuda` is the native backend (./native,
// ctx's own kernels in native/) on the GPU, opt-in (`--backend cuda`) until its GPU test suite has
// been recorded passing on real hardware (native/README.md, "GPU runs"); then auto will prefer it
// whenever probeDevices() finds a GPU.
// If the cpu backend cannot start (onnxruntime missing), auto falls back to the reference
// backend and says why.

import { CtxError } from '../errors.js';
import type { Model } from '../model/model.js';
import type { Backend, BackendName, BackendOptions } from './contract.js';
import { createCpuBackend } from './cpu/index.js';
import { createNativeBackend } from './native/index.js';
import { createReferenceBackend } from './reference/index.js';

export type { Backend, BackendName, BackendOptions } from './contract.js';

export const BACKENDS: BackendName[] = ['reference', 'cpu', 'cuda'];
export type BackendChoice = BackendName | 'auto';

export async function createBackend(
  name: BackendChoice,
  model: Model,
  opts: BackendOptions = {},
  onNotice: (message: string) => void = () => {},
): Promise<Backend> {
  switch (name) {
    case 'reference':
      return createReferenceBackend(model, opts);
    case 'cpu':
      return createCpuBackend(model, opts);
    case 'cuda':
      return createNativeBackend(model, opts);
    case 'auto':
      try {
        return await createCpuBackend(model, opts);
      } catch (e) {
        // A flag the cpu backend refuses (--dtype) is the user's to fix, not a reason to run slowly.
        if (e instanceof CtxError && e.kind === 'usage') throw e;
        onNotice(`the cpu backend could not start (${(e as Error).message}); using the slow reference backend`);
        return createReferenceBackend(model, opts);
      }
  }
}
