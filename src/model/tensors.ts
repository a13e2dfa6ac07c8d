// Which tensors a model has: one declarative table per architecture, and its resolution against a
// checkpoint. Every loader (the reference, cpu and native backends) and the model check read the
// resolved table; no other file lists a tensor name.
//
// A row is one module of the checkpoint — an embedding, a linear layer, a norm, or any other table
// of numbers — under the role name the backends' math uses ("q", "inputNorm", "lmHead"). It gives
// the module's path in the safetensors files (layer rows: below `model.layers.<i>.`), its tensors
// with their shapes as functions of the config, and when it applies:
//   when      the role exists only for models where this holds (beacon rows: beacon checkpoints)
//   optional  the checkpoint may lack the module; `fallback` then names the role that stands in
//   readWhen  the module is read only where this holds; elsewhere the fallback stands in
//             (beacon_o_proj only when "o" is a beacon parameter, lm_head only when untied)
// A tensor of a module may itself be optional (a bias): used when the file has it.
//
// Adding a tensor is one row here plus the math that uses it: the loaders, the shape check and the
// native engine's weight list all follow the table. Adding an architecture is one entry in
// config.ts's ARCHITECTURES naming its table (several architectures share LLAMA_DECODER).

import { CtxError } from '../errors.js';
import type { ModelConfig } from './config.js';
import type { ModelWeights } from './weights.js';

/**
 * What a module is; loaders use it to pick a storage type (matrices vs f32 vectors). A `host`
 * module is read by the engine on the host and never by a backend (CLEX's ODE, which turns into
 * the RoPE frequencies every step carries): no backend stores or uploads it.
 */
export type ModuleKind = 'embedding' | 'linear' | 'norm' | 'host';

export interface TensorSpec {
  shape: (c: ModelConfig) => number[];
  /** Used when the checkpoint has it (a bias); otherwise the module has no such tensor. */
  optional?: boolean;
}

export interface ModuleRow {
  role: string;
  kind: ModuleKind;
  /** The module's path; its tensors are `<path>.<key>` for each key of `tensors`. */
  path: string;
  tensors: Record<string, TensorSpec>;
  when?: (c: ModelConfig) => boolean;
  optional?: boolean;
  readWhen?: (c: ModelConfig) => boolean;
  fallback?: string;
  /** Backends that store weights in 8 or 4 bits may store this one so (cpu: the MLP and the LM head). */
  quantizable?: boolean;
}

/** An architecture's table: model-level modules, then the modules of every layer. */
export interface ArchTensors {
  model: ModuleRow[];
  layer: ModuleRow[];
}

// ---- rows -----------------------------------------------------------------------------------------

type Dim = (c: ModelConfig) => number;
const hidden: Dim = (c) => c.hiddenSize;
const qDim: Dim = (c) => c.numHeads * c.headDim;
const kvDim: Dim = (c) => c.numKvHeads * c.headDim;
const inter: Dim = (c) => c.intermediateSize;
const vocab: Dim = (c) => c.vocabSize;
const isBeacon = (c: ModelConfig) => c.beacon !== null;
const isClex = (c: ModelConfig) => c.ropeScaling?.type === 'clex';

/**
 * Which beacon projections a model's rows may use (`beacon_param`): Activation Beacon's beacon rows
 * or FocusLLM's candidate rows (config.ts, focus-config.ts); null for a model without them.
 */
export function beaconParams(c: ModelConfig): string[] | null {
  return c.beacon?.param ?? c.focus?.param ?? null;
}
const hasBeaconProjections = (c: ModelConfig) => beaconParams(c) !== null;

type RowOptions = Omit<ModuleRow, 'role' | 'kind' | 'path' | 'tensors'>;

/** A linear layer y = x Wᵀ (+ b): weight [out, in], with an optional bias [out] when `bias`. */
function linear(role: string, path: string, out: Dim, inp: Dim, o: RowOptions & { bias?: boolean } = {}): ModuleRow {
  const { bias, ...rest } = o;
  const tensors: Record<string, TensorSpec> = { weight: { shape: (c) => [out(c), inp(c)] } };
  if (bias) tensors.bias = { shape: (c) => [out(c)], optional: true };
  return { role, kind: 'linear', path, tensors, ...rest };
}

/** An RMSNorm's weight [dim]. */
function rmsNorm(role: string, path: string, dim: Dim = hidden): ModuleRow {
  return { role, kind: 'norm', path, tensors: { weight: { shape: (c) => [dim(c)] } } };
}

/** A LayerNorm's weight and bias [dim] each. */
function layerNorm(role: string, path: string, dim: Dim = hidden): ModuleRow {
  return { role, kind: 'norm', path, tensors: { weight: { shape: (c) => [dim(c)] }, bias: { shape: (c) => [dim(c)] } } };
}

/**
 * CLEX's ODE (src/engine/rope-clex.ts), one module shared by every layer, D = the rotary dims,
 * p = rope_scaling.param_factor: the frequencies at t = 1 (a stored buffer, used as stored) and the
 * two matrices of the network, used as x · W (no transpose, no bias).
 */
const CLEX_ROW: ModuleRow = {
  role: 'clex',
  kind: 'host',
  path: 'model.clex_layer',
  when: isClex,
  tensors: {
    inv_freq: { shape: (c) => [c.rotaryDim / 2] },
    'proj_func.ode_up_proj': { shape: (c) => [c.rotaryDim / 2, clexWidth(c)] },
    'proj_func.ode_down_proj': { shape: (c) => [clexWidth(c), c.rotaryDim / 2] },
  },
};

function clexWidth(c: ModelConfig): number {
  return c.ropeScaling?.type === 'clex' ? c.ropeScaling.paramFactor * c.rotaryDim : 0;
}

/** An embedding table [rows, hidden]. */
function embedding(role: string, path: string, rows: Dim, o: RowOptions = {}): ModuleRow {
  return { role, kind: 'embedding', path, tensors: { weight: { shape: (c) => [rows(c), c.hiddenSize] } }, ...o };
}

/**
 * Llama-style decoders (Llama 2/3, Mistral, Qwen2): pre-norm blocks with RMSNorm, attention with
 * q/k/v/o projections (biases where the checkpoint has them), a SwiGLU MLP; Activation Beacon
 * checkpoints add a beacon embedding row and beacon projections. Layer rows are listed in the
 * order the model check reports them.
 */
export const LLAMA_DECODER: ArchTensors = {
  model: [
    embedding('embed', 'model.embed_tokens', vocab),
    // FocusLLM checkpoints carry it too, but never read it (FOCUSLLM.md §2): only Activation Beacon's.
    embedding('beaconEmbed', 'model.beacon_embed_tokens', () => 1, { when: isBeacon }),
    rmsNorm('finalNorm', 'model.norm'),
    linear('lmHead', 'lm_head', vocab, hidden, { readWhen: (c) => !c.tieWordEmbeddings, fallback: 'embed', quantizable: true }),
    CLEX_ROW,
  ],
  layer: [
    linear('q', 'self_attn.q_proj', qDim, hidden, { bias: true }),
    linear('k', 'self_attn.k_proj', kvDim, hidden, { bias: true }),
    linear('v', 'self_attn.v_proj', kvDim, hidden, { bias: true }),
    linear('o', 'self_attn.o_proj', hidden, qDim, { bias: true }),
    // Beacon rows (ALGORITHMS.md §1) and FocusLLM's candidate rows (FOCUSLLM.md §2): the reference
    // codes' from_pretrained copy base q/k/v/o into any beacon projection the checkpoint lacks;
    // beacon_o_proj is used only when "o" is a beacon_param.
    linear('beaconQ', 'self_attn.beacon_q_proj', qDim, hidden, { bias: true, when: hasBeaconProjections, optional: true, fallback: 'q' }),
    linear('beaconK', 'self_attn.beacon_k_proj', kvDim, hidden, { bias: true, when: hasBeaconProjections, optional: true, fallback: 'k' }),
    linear('beaconV', 'self_attn.beacon_v_proj', kvDim, hidden, { bias: true, when: hasBeaconProjections, optional: true, fallback: 'v' }),
    linear('beaconO', 'self_attn.beacon_o_proj', hidden, qDim, {
      bias: true,
      when: hasBeaconProjections,
      readWhen: (c) => beaconParams(c)!.includes('o'),
      optional: true,
      fallback: 'o',
    }),
    rmsNorm('inputNorm', 'input_layernorm'),
    rmsNorm('postNorm', 'post_attention_layernorm'),
    linear('gate', 'mlp.gate_proj', inter, hidden, { quantizable: true }),
    linear('up', 'mlp.up_proj', inter, hidden, { quantizable: true }),
    linear('down', 'mlp.down_proj', hidden, inter, { quantizable: true }),
  ],
};

/**
 * Phi-2 (transformers' PhiForCausalLM): one LayerNorm per layer feeding attention and the MLP in
 * parallel; q/k/v and the output projection `dense` with biases; a two-matrix GELU MLP (fc1 = the
 * up projection [I, H], fc2 = the down projection [H, I]) with biases; a final LayerNorm and an LM
 * head with a bias. CLEX-Phi-2 checkpoints add the CLEX row.
 */
export const PHI_DECODER: ArchTensors = {
  model: [
    embedding('embed', 'model.embed_tokens', vocab),
    layerNorm('finalNorm', 'model.final_layernorm'),
    linear('lmHead', 'lm_head', vocab, hidden, { bias: true, readWhen: (c) => !c.tieWordEmbeddings, fallback: 'embed', quantizable: true }),
    CLEX_ROW,
  ],
  layer: [
    linear('q', 'self_attn.q_proj', qDim, hidden, { bias: true }),
    linear('k', 'self_attn.k_proj', kvDim, hidden, { bias: true }),
    linear('v', 'self_attn.v_proj', kvDim, hidden, { bias: true }),
    linear('o', 'self_attn.dense', hidden, qDim, { bias: true }),
    layerNorm('inputNorm', 'input_layernorm'),
    linear('up', 'mlp.fc1', inter, hidden, { bias: true, quantizable: true }),
    linear('down', 'mlp.fc2', hidden, inter, { bias: true, quantizable: true }),
  ],
};

// ---- resolution -----------------------------------------------------------------------------------

export interface TensorRef {
  /** The tensor's name in the checkpoint. */
  name: string;
  /** Its shape (checked against the file). */
  shape: number[];
}

/** A module as the checkpoint provides it. A role that fell back is the same object as its fallback's. */
export interface ModuleTensors {
  kind: ModuleKind;
  quantizable: boolean;
  /** Its tensors by key ("weight", "bias", ...); optional ones only when present. */
  tensors: Record<string, TensorRef>;
}

/** Role -> module, for the model level or one layer. */
export type Modules = Record<string, ModuleTensors>;

export interface ModelTensors {
  model: Modules;
  layers: Modules[];
}

/** The module playing `role`; a role the model lacks is a bug in the caller. */
export function moduleOf(modules: Modules, role: string): ModuleTensors {
  const m = modules[role];
  if (!m) throw new Error(`the model has no "${role}" tensors`);
  return m;
}

/** Every distinct tensor of the model, model-level first, each once (roles that fall back share). */
export function distinctTensors(t: ModelTensors): TensorRef[] {
  const seen = new Map<string, TensorRef>();
  for (const mods of [t.model, ...t.layers]) {
    for (const m of Object.values(mods)) for (const ref of Object.values(m.tensors)) seen.set(ref.name, ref);
  }
  return [...seen.values()];
}

function resolveRows(rows: ModuleRow[], prefix: string, c: ModelConfig, w: Pick<ModelWeights, 'has' | 'info'>, dir: string): Modules {
  const out: Modules = {};
  for (const row of rows) {
    if (row.when && !row.when(c)) continue;
    const path = prefix + row.path;
    const read = !row.readWhen || row.readWhen(c);
    const [firstKey] = Object.keys(row.tensors);
    if (!read || (row.optional && !w.has(`${path}.${firstKey}`))) {
      if (row.fallback) out[row.role] = moduleOf(out, row.fallback);
      continue;
    }
    const tensors: Record<string, TensorRef> = {};
    for (const [key, spec] of Object.entries(row.tensors)) {
      const name = `${path}.${key}`;
      if (!w.has(name)) {
        if (spec.optional) continue;
        throw new CtxError('model', `weights lack tensor "${name}"`, { path: dir });
      }
      const shape = spec.shape(c);
      const got = w.info(name).shape;
      if (got.length !== shape.length || got.some((d, k) => d !== shape[k])) {
        throw new CtxError('model', `tensor "${name}" has shape [${got}] but config.json implies [${shape}]`, { path: w.info(name).file });
      }
      tensors[key] = { name, shape };
    }
    out[row.role] = { kind: row.kind, quantizable: Boolean(row.quantizable), tensors };
  }
  return out;
}

/**
 * The model's tensors by role, checked: every required tensor exists with the shape the config
 * implies (a CtxError naming the first that does not, in table order).
 */
export function resolveTensors(table: ArchTensors, c: ModelConfig, w: Pick<ModelWeights, 'has' | 'info'>, dir: string): ModelTensors {
  const model = resolveRows(table.model, '', c, w, dir);
  const layers = Array.from({ length: c.numLayers }, (_, i) => resolveRows(table.layer, `model.layers.${i}.`, c, w, dir));
  return { model, layers };
}

