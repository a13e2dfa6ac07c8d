// What a run reported, summarised into one object: printed by --json at the end, and carried by
// the `done` line of --events.

import type { RunEvent } from './events.js';

export interface JsonResult {
  answer: string | null;
  finishReason: string | null;
  model: { name: string; dir: string } | null;
  backend: string | null;
  numeric: string | null;
  strategy: string | null;
  /** Why `auto` chose the strategy (null when it was named). */
  strategyReason: string | null;
  tokens: { document: number; prompt: number; generated: number };
  kv: { rows: number; bytes: number } | null;
  /** See Timings. */
  timings: Timings;
  sources: Array<{ path: string; kind: string; bytes: number; pages?: number; encoding?: string }>;
  skipped: Array<{ path: string; reason: string }>;
  warnings: string[];
  /** Every exchange, for `chat --json`. */
  turns: Array<{ question: string; answer: string; finishReason: string }>;
  /** Citations in the (last) answer, resolved against the inputs (ask, summarize). */
  citations?: Array<{ text: string; path?: string; page?: number; line?: number; valid: boolean }>;
  /** Source markers added for citations. */
  markers?: { count: number; tokens: number };
  /** How the summary was made (summarize). */
  summary?: Record<string, unknown>;
}

/**
 * Seconds, each measured on its own: readSeconds reading (or restoring) the document;
 * firstTokenSeconds from the question to its first answer token, answerSeconds to its end (the last
 * answer); firstTokenAfterReadSeconds the wall time from the end of reading to the first answer
 * token, whatever ran between them; cacheSaveSeconds/cacheSaveBytes the session written to the cache
 * (during the answer or after it; null when it was not written).
 */
export interface Timings {
  readSeconds: number | null;
  firstTokenSeconds: number | null;
  firstTokenAfterReadSeconds: number | null;
  answerSeconds: number | null;
  cached: boolean;
  cacheSaveSeconds: number | null;
  cacheSaveBytes: number | null;
}

export class RunSummary {
  readonly result: JsonResult = {
    answer: null,
    finishReason: null,
    model: null,
    backend: null,
    numeric: null,
    strategy: null,
    strategyReason: null,
    tokens: { document: 0, prompt: 0, generated: 0 },
    kv: null,
    timings: { readSeconds: null, firstTokenSeconds: null, firstTokenAfterReadSeconds: null, answerSeconds: null, cached: false, cacheSaveSeconds: null, cacheSaveBytes: null },
    sources: [],
    skipped: [],
    warnings: [],
    turns: [],
  };
  private question = '';
  /** When the read event came (ms, `now`); null before it, and once the first token after it came. */
  private readAt: number | null = null;

  /** `now`: milliseconds, for the wall time between events. */
  constructor(private readonly now: () => number = () => performance.now()) {}

  add(e: RunEvent): void {
    const r = this.result;
    switch (e.type) {
      case 'source':
        r.sources.push({ path: e.path, kind: e.kind, bytes: e.bytes, pages: e.pages, encoding: e.encoding });
        break;
      case 'skipped':
        r.skipped.push({ path: e.path, reason: e.reason });
        break;
      case 'model':
        r.model = { name: e.name, dir: e.dir };
        r.backend = e.backend;
        r.numeric = e.numeric;
        break;
      case 'plan':
        r.strategy = e.strategy;
        r.strategyReason = e.strategyReason ?? null;
        r.tokens.document = e.documentTokens;
        r.kv = { rows: e.kvRows, bytes: e.kvBytes };
        break;
      case 'read':
        r.timings.readSeconds = e.seconds;
        r.timings.cached = e.cached;
        this.readAt = this.now();
        break;
      case 'token':
        if (this.readAt !== null && r.timings.firstTokenAfterReadSeconds === null) r.timings.firstTokenAfterReadSeconds = (this.now() - this.readAt) / 1000;
        break;
      case 'saved':
        r.timings.cacheSaveSeconds = e.seconds;
        r.timings.cacheSaveBytes = e.bytes;
        break;
      case 'question':
        this.question = e.text;
        break;
      case 'answer':
        r.answer = e.answer;
        r.finishReason = e.reason;
        r.tokens.prompt += e.promptTokens;
        r.tokens.generated += e.generatedTokens;
        r.timings.firstTokenSeconds = e.firstTokenSeconds;
        r.timings.answerSeconds = e.seconds;
        r.turns.push({ question: this.question, answer: e.answer, finishReason: e.reason });
        break;
      case 'citations':
        r.citations = e.citations;
        break;
      case 'markers':
        r.markers = { count: e.count, tokens: e.tokens };
        break;
      case 'summary': {
        const { type: _type, ...summary } = e;
        r.summary = summary;
        break;
      }
      case 'warning':
        r.warnings.push(e.message);
        break;
      default:
        break;
    }
  }
}
