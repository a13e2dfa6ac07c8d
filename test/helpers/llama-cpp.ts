// llama.cpp itself, through node-llama-cpp (installed in bench/cpu/peer, not a dependency of ctx):
// the peer the GGUF tests compare ctx with. Where it is not installed the tests skip with the reason,
// except when CTX_REQUIRE_LLAMA_PEER=1 (CI installs the peer and sets it), where its absence fails
// them: a check that silently did not run is not a check.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT } from './fixtures.js';

/** The parts of node-llama-cpp the tests use. */
export interface LlamaModule {
  getLlama(o: object): Promise<LlamaRuntime>;
}

export interface LlamaRuntime {
  loadModel(o: object): Promise<LlamaModel>;
}

export interface LlamaModel {
  tokenize(text: string, special: boolean): number[];
  createContext(o: object): Promise<{
    getSequence(): { controlledEvaluate(items: unknown[]): Promise<Array<{ next?: { token?: number; logits?: Map<number, number> } } | undefined>> };
    dispose(): Promise<void>;
  }>;
  dispose(): Promise<void>;
}

const ENTRY = join(REPO_ROOT, 'bench/cpu/peer/node_modules/node-llama-cpp/dist/index.js');

/** node-llama-cpp, or why it cannot be used (a skip reason). Throws instead when CTX_REQUIRE_LLAMA_PEER=1. */
export async function importLlamaCpp(purpose: string): Promise<LlamaModule | string> {
  try {
    return (await import(pathToFileURL(ENTRY).href)) as LlamaModule;
  } catch (e) {
    const reason = `llama.cpp (node-llama-cpp) is not installed: run "cd bench/cpu/peer && npm install" to ${purpose}`;
    if (process.env.CTX_REQUIRE_LLAMA_PEER === '1') throw new Error(`${reason} (CTX_REQUIRE_LLAMA_PEER=1: ${(e as Error).message})`);
    return reason;
  }
}

export interface GreedyRun {
  /** llama.cpp's greedy tokens after the prompt. */
  tokens: number[];
  /** Its logits before each of them: [steps][vocab]. */
  logits: Float32Array[];
}

export interface LlamaInference {
  /** Greedy decoding of `steps` tokens after `prompt`, one evaluation per token. */
  greedy(path: string, prompt: number[], steps: number, vocab: number): Promise<GreedyRun>;
  dispose(): Promise<void>;
}

/**
 * llama.cpp for inference on the CPU. One thread: its thread pool spins while it waits, which on
 * a shared two-core machine made 300 decode steps of a tiny model take 90 s instead of 0.3 s.
 * KV cache in float32 and no flash attention, so that its attention rounds as ctx's does (its
 * default f16 cache alone moved the logits of a float32 file by 0.04).
 */
export async function loadLlamaInference(): Promise<LlamaInference | string> {
  const mod = await importLlamaCpp('compare inference with it');
  if (typeof mod === 'string') return mod;
  const llama = await mod.getLlama({ gpu: false, build: 'never', logLevel: 'error' });
  return {
    async greedy(path, prompt, steps, vocab) {
      const model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
      const context = await model.createContext({
        contextSize: prompt.length + steps + 8,
        batchSize: Math.max(prompt.length, 32),
        threads: 1,
        flashAttention: false,
        experimentalKvCacheKeyType: 'F32',
        experimentalKvCacheValueType: 'F32',
      });
      try {
        const seq = context.getSequence();
        const ask = { generateNext: { token: true, logits: true } };
        const run: GreedyRun = { tokens: [], logits: [] };
        let out = await seq.controlledEvaluate([...prompt.slice(0, -1), [prompt[prompt.length - 1], ask]]);
        for (let i = 0; i < steps; i++) {
          const next = out[out.length - 1]?.next;
          if (next?.token === undefined || !next.logits) throw new Error('llama.cpp returned no token or logits');
          const row = new Float32Array(vocab);
          for (const [t, v] of next.logits) row[t] = v;
          run.tokens.push(next.token);
          run.logits.push(row);
          if (i + 1 < steps) out = await seq.controlledEvaluate([[next.token, ask]]);
        }
        return run;
      } finally {
        await context.dispose();
        await model.dispose();
      }
    },
    async dispose() {},
  };
}
