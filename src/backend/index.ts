// Backend selection: the one place that knows which backends exist and which one `auto` picks.

import type { Model } from '../model/model.js';
import type { Backend, BackendName, BackendOptions } from './contract.js';
import { createCpuBackend } from './cpu/index.js';
import { createReferenceBackend } from './reference/index.js';

export type { Backend, BackendName, BackendOptions } from './contract.js';

export const BACKENDS: BackendName[] = ['reference', 'cpu', 'cuda'];
export type BackendChoice = BackendName | 'auto';

export async function createBackend(name: BackendChoice, model: Model, opts: BackendOptions = {}): Promise<Backend> {
  switch (name) {
    case 'auto':
    case 'reference':
      return createReferenceBackend(model, opts);
    case 'cpu':
      return createCpuBackend(model, opts);
    default:
      throw new Error(`backend "${name}" is not available yet`);
  }
}
