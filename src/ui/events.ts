// What a run reports as it goes. The CLI commands emit these; a renderer (plain text, JSON, JSON
// Lines, the Ink UI) turns them into output. Nothing in the engine prints.

import type { ReadProgress } from '../engine/reader.js';

export type RunEvent =
  | { type: 'source'; path: string; kind: string; bytes: number; pages?: number; encoding?: string }
  | { type: 'skipped'; path: string; reason: string }
  | { type: 'model'; name: string; dir: string; backend: string; numeric: string }
  /** A model being downloaded on first use: bytes done of total (null when unknown). */
  | { type: 'download'; file: string; done: number; total: number | null }
  | { type: 'tokenize'; doneChars: number; totalChars: number }
  | {
      type: 'plan';
      strategy: string;
      documentTokens: number;
      kvRows: number;
      kvBytes: number;
      nativeWindow: number;
      notes: string[];
      /** Where each source ends in the prompt, in tokens (same order as the `source` events). */
      sourceEnds?: number[];
    }
  | ({ type: 'progress' } & ReadProgress)
  /** The document is in the session: read now, or restored from the cache (`cached`, no reading). */
  | { type: 'read'; tokens: number; seconds: number; cached: boolean }
  | { type: 'question'; text: string }
  | { type: 'token'; text: string }
  | {
      type: 'answer';
      answer: string;
      reason: string;
      promptTokens: number;
      generatedTokens: number;
      firstTokenSeconds: number;
      seconds: number;
    }
  /** Multi-step work such as a hierarchical summary: `done` of `total` sections finished. */
  | { type: 'section'; done: number; total: number; label: string }
  /** Citations found in the answer, resolved against the inputs (invalid ones are marked). */
  | { type: 'citations'; citations: Array<{ text: string; path?: string; page?: number; line?: number; valid: boolean }> }
  /** Source markers put into the document for citations: how many, and what they cost in tokens. */
  | { type: 'markers'; count: number; tokens: number }
  /** How a summary was made (ctx summarize): the mode, why, and per-step details when hierarchical. */
  | { type: 'summary'; mode: string; reason: string; [detail: string]: unknown }
  | { type: 'warning'; message: string };

export interface Renderer {
  event(e: RunEvent): void;
  /** Called once at the end of a successful run (JSON renderers print here). */
  finish(): void;
  /**
   * Called once when the run fails or is interrupted, before ctx prints its one-line error: the
   * Ink UI takes itself down, `--events` writes its `error` line. Events after it are ignored.
   */
  fail?(error: unknown): void;
}
