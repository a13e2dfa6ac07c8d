// What a run reports as it goes, as typed events: the library API (open.ts, summarize) emits them
// to an `onEvent` callback, and the CLI hands them to a renderer (plain text, JSON, JSON Lines, the
// Ink UI; src/ui). Nothing in the engine prints.
//
// In order, for a question about a document:
//   source… skipped… (download…) model  tokenize… (markers)  plan  progress… read  question token… answer (citations)
// warnings come whenever they arise; saved (a fresh read written to the cache) comes once that
// write is done, during the answer or after it, before the document is closed.

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
      /** Why `auto` chose the strategy (absent when the options named it). */
      strategyReason?: string;
      /** The document's tokens, citation markers included: the count `inspect`, progress and `read` also give. */
      documentTokens: number;
      kvRows: number;
      kvBytes: number;
      nativeWindow: number;
      notes: string[];
      /** Where each source ends in the document, in tokens (same order as the `source` events). */
      sourceEnds?: number[];
    }
  | ({ type: 'progress' } & ReadProgress)
  /** The document is in the session: read now, or restored from the cache (`cached`, no reading); `tokens` is the document's. */
  | { type: 'read'; tokens: number; seconds: number; cached: boolean }
  /** The document's session written to the cache (while the question is answered, or after): bytes on disk, seconds the write took. */
  | { type: 'saved'; bytes: number; seconds: number }
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
  | { type: 'citations'; citations: CheckedCitation[] }
  /** Source markers put into the document for citations: how many, and what they cost in tokens. */
  | { type: 'markers'; count: number; tokens: number }
  /** How a summary was made: the mode, why, and per-step details when hierarchical. */
  | { type: 'summary'; mode: string; reason: string; [detail: string]: unknown }
  | { type: 'warning'; message: string };

/** How far reading has come (readDocument reports it after every step). */
export interface ReadProgress {
  /** Document tokens read so far, and the document's tokens (the plan's documentTokens); the prompt's prefix before it is not counted. */
  done: number;
  total: number;
  elapsedSeconds: number;
  tokensPerSecond: number;
  etaSeconds: number;
  kvRows: number;
  kvBytes: number;
  /** Tokens read per KV row held (beacon > 1). */
  compression: number;
}

/** A citation in an answer and what it points at; `valid` is false when the inputs hold no such place. */
export interface CheckedCitation {
  text: string;
  path?: string;
  page?: number;
  line?: number;
  valid: boolean;
}

/** Where events go; the default drops them. */
export type EventSink = (e: RunEvent) => void;

export const ignoreEvents: EventSink = () => {};
