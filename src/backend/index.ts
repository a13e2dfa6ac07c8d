// Backend selection: the one place that knows which backends exist and which one `auto` picks.
//
// auto → cpu (onnxruntime), the default without a GPU. `cuda` is the native backend (./native,
// ctx's own kernels in native/) on the GPU, opt-in (`--backend cuda`) until its GPU test suite has
// been recorded passing on real hardware (native/README.md, "GPU runs"); then auto will prefer it
// whenever probeDevices() finds a GPU.
// If the cpu backend cannot start (onnxruntime missing), auto falls back to the reference
// backend and says why. A --dtype the backend does not run is refused before anything starts
// (never a silent fall back to the 10× slower reference backend).

import { CtxError } from '../errors.js';
import type { Model } from '../model/model.js';
import type { Backend, BackendName, BackendOptions } from './contract.js';
import { createCpuBackend } from './cpu/index.js';
import { createNativeBackend } from './native/index.js';
import { createReferenceBackend } from './reference/index.js';

export type { Backend, BackendName, BackendOptions } from './contract.js';

export const BACKENDS: BackendName[] = ['reference', 'cpu', 'cuda'];
export type BackendChoice = BackendName | 'auto';

/**
 * The weight precisions each backend runs (--dtype), the default first: cpu f32, q8 or q4 (8- or
 * 4-bit MLP and LM head, cpu/weights.ts); cuda f32 or bf16; the reference only f32.
 */
export const DTYPES: Record<BackendName, readonly string[]> = {
  reference: ['f32'],
  cpu: ['f32', 'q8', 'q4'],
  cuda: ['f32', 'bf16'],
};

/** Refuses a --dtype that `backend` does not run, naming those it does (and who runs the one asked for). */
export function checkDtype(backend: BackendName, dtype: string | undefined): void {
  if (dtype === undefined || DTYPES[backend].includes(dtype)) return;
  const others = BACKENDS.filter((b) => b !== backend && DTYPES[b].includes(dtype));
  const elsewhere = others.length ? `; ${dtype} runs on --backend ${others.join(' or ')}` : '';
  const auto = backend === 'cpu' ? ' (the default)' : '';
  throw new CtxError('usage', `the ${backend} backend${auto} runs --dtype ${orList(DTYPES[backend])}, not "${dtype}"${elsewhere}`);
}

function orList(xs: readonly string[]): string {
  return xs.length === 1 ? xs[0]! : `${xs.slice(0, -1).join(', ')} or ${xs.at(-1)}`;
}

export async function createBackend(
  name: BackendChoice,
  model: Model,
  opts: BackendOptions = {},
  onNotice: (message: string) => void = () => {},
): Promise<Backend> {
  checkDtype(name === 'auto' ? 'cpu' : name, opts.dtype);
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
        // Stopped (Ctrl-C while the weights were hashed): no other backend is wanted either.
        if (opts.signal?.aborted) throw e;
        onNotice(`the cpu backend could not start (${(e as Error).message}); using the slow reference backend`);
        return createReferenceBackend(model, opts);
      }
  }
}
