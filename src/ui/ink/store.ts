// The state behind the Ink display, and how run events and keys change it. Plain TypeScript with
// no Ink in it, so it can be tested directly; app.tsx draws it.
//
// The screen has two parts:
//   - committed lines, printed once above everything (Ink's <Static>): the read summary, the
//     questions, every finished row of an answer, notes and warnings;
//   - a small live region redrawn as things change: the reading progress, the row of the answer
//     being written, or the chat prompt.
// An answer is cut into rows as it streams (format.ts takeRows), so a long answer never makes Ink
// redraw more than one row per token.

import { formatBytes } from '../../units.js';
import type { ReadProgress } from '../../engine/events.js';
import type { RunEvent } from '../events.js';
import { count, duration, forTerminal, sectionLine, takeRows } from '../format.js';

export type LineKind = 'info' | 'note' | 'warning' | 'error' | 'question' | 'answer' | 'blank';

export interface Line {
  id: number;
  kind: LineKind;
  text: string;
}

export type Phase =
  /** Reading inputs, loading the model, tokenizing. */
  | 'opening'
  | 'reading'
  | 'answering'
  /** Chat: waiting for a question. */
  | 'prompt'
  /** Nothing live (between steps, or finished). */
  | 'idle';

export interface UiState {
  lines: Line[];
  phase: Phase;
  /** Terminal width the rows were cut at. */
  columns: number;
  sources: number;
  skipped: number;
  /** Token offset where each source ends (plan event), for "sources done". */
  sourceEnds: number[];
  backend: string | null;
  strategy: string | null;
  documentTokens: number;
  tokenize: { doneChars: number; totalChars: number } | null;
  /** A model being downloaded on first use. */
  download: { file: string; done: number; total: number | null } | null;
  progress: ReadProgress | null;
  /** The unfinished row of the answer being written. */
  partial: string;
  /** Pieces of the current answer so far, and when it started (performance.now ms). */
  answerPieces: number;
  answerStartedAt: number;
  /** Chat: the question being typed, and a one-line hint under it. */
  input: string;
  hint: string;
  /** Chat: Ctrl-C was pressed during this answer. */
  stopping: boolean;
}

export type PromptResult =
  | { kind: 'line'; text: string }
  /** Ctrl-D on an empty line: leave normally. */
  | { kind: 'eof' }
  /** Ctrl-C on an empty line: leave as interrupted. */
  | { kind: 'interrupt' };

/** The keys the chat reacts to (a subset of Ink's useInput key). */
export interface KeyInfo {
  ctrl?: boolean;
  meta?: boolean;
  return?: boolean;
  backspace?: boolean;
  delete?: boolean;
  escape?: boolean;
  tab?: boolean;
  upArrow?: boolean;
  downArrow?: boolean;
  leftArrow?: boolean;
  rightArrow?: boolean;
}

export interface StoreOptions {
  /** The terminal's width now (read at every row cut, so a resize applies to what follows). */
  columns: () => number;
  /** Stream the answer (false: show it when complete, --no-stream). */
  stream: boolean;
  /** Ctrl-C that must end the process now (while reading, or a second one during an answer). */
  onHardInterrupt: () => void;
  now?: () => number;
}

export const PROMPT_HINT = 'Enter asks · Ctrl-C stops an answer, or quits at an empty prompt · /help';

export class UiStore {
  private state: UiState;
  private readonly listeners = new Set<() => void>();
  private nextId = 0;
  private readonly now: () => number;
  /** --no-stream: the answer's text until it is complete. */
  private held = '';
  private promptResolve: ((r: PromptResult) => void) | null = null;
  /** Chat: stops the answer being written (set while one is). */
  private stopAnswer: (() => void) | null = null;

  constructor(private readonly o: StoreOptions) {
    this.now = o.now ?? (() => performance.now());
    this.state = {
      lines: [],
      phase: 'opening',
      columns: o.columns(),
      sources: 0,
      skipped: 0,
      sourceEnds: [],
      backend: null,
      strategy: null,
      documentTokens: 0,
      tokenize: null,
      download: null,
      progress: null,
      partial: '',
      answerPieces: 0,
      answerStartedAt: 0,
      input: '',
      hint: PROMPT_HINT,
      stopping: false,
    };
  }

  // --- for React (useSyncExternalStore) ---------------------------------------------------------

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getState = (): UiState => this.state;

  private set(patch: Partial<UiState>, commit: Array<[LineKind, string]> = []): void {
    let lines = this.state.lines;
    if (commit.length) lines = [...lines, ...commit.map(([kind, text]) => ({ id: this.nextId++, kind, text }))];
    this.state = { ...this.state, ...patch, lines, columns: this.o.columns() };
    for (const l of this.listeners) l();
  }

  /** Prints lines above the live region, once. */
  commit(kind: LineKind, ...texts: string[]): void {
    this.set({}, texts.map((t) => [kind, t]));
  }

  // --- run events --------------------------------------------------------------------------------

  apply(e: RunEvent): void {
    const s = this.state;
    switch (e.type) {
      case 'source':
        this.set({ sources: s.sources + 1 });
        break;
      case 'skipped':
        this.set({ skipped: s.skipped + 1 }, [['warning', `skipped ${e.path}: ${e.reason}`]]);
        break;
      case 'warning':
        this.set({}, [['warning', `warning: ${e.message}`]]);
        break;
      case 'download':
        this.set({ download: { file: e.file, done: e.done, total: e.total } });
        break;
      case 'model':
        this.set({ backend: `${e.backend} ${e.numeric}`, download: null });
        break;
      case 'tokenize':
        this.set({ tokenize: { doneChars: e.doneChars, totalChars: e.totalChars } });
        break;
      case 'plan':
        this.set(
          { phase: 'reading', strategy: e.strategy, documentTokens: e.documentTokens, sourceEnds: e.sourceEnds ?? [] },
          e.notes.map((n) => ['note', `note: ${n}`] as [LineKind, string]),
        );
        break;
      case 'progress':
        this.set({ phase: 'reading', progress: { ...e } });
        break;
      case 'read':
        this.set({ phase: 'idle', progress: null, tokenize: null }, [['info', readSummary(e, s)]]);
        break;
      case 'section':
        this.set({}, [['info', sectionLine(e)]]);
        break;
      case 'citations':
        this.set(
          {},
          e.citations.map((c) => ['note', c.valid ? `  ${c.text} → ${[c.path, c.page && `p. ${c.page}`, c.line && `line ${c.line}`].filter(Boolean).join(' ')}` : `  ${c.text} (not found in the inputs)`] as [LineKind, string]),
        );
        break;
      case 'question':
        this.held = '';
        this.set(
          { phase: 'answering', partial: '', answerPieces: 0, answerStartedAt: this.now(), stopping: false },
          [['blank', ''], ['question', `❯ ${forTerminal(e.text).replace(/\n/g, ' ')}`], ['blank', '']],
        );
        break;
      case 'token':
        if (!this.o.stream) {
          this.held += e.text;
          this.set({ answerPieces: s.answerPieces + 1 });
        } else {
          this.addAnswerText(e.text, s.answerPieces + 1);
        }
        break;
      case 'answer':
        this.finishAnswer(e);
        break;
      default:
        break;
    }
  }

  private addAnswerText(text: string, pieces: number): void {
    const { rows, rest } = takeRows(this.state.partial + forTerminal(text), this.o.columns());
    this.set({ partial: rest, answerPieces: pieces }, rows.map((r) => ['answer', r] as [LineKind, string]));
  }

  private finishAnswer(e: Extract<RunEvent, { type: 'answer' }>): void {
    if (!this.o.stream) this.addAnswerText(this.held, this.state.answerPieces);
    this.held = '';
    const last = this.state.partial;
    const lines: Array<[LineKind, string]> = last ? [['answer', last]] : [];
    const stats = `${count(e.generatedTokens)} tokens in ${duration(e.seconds)}` + (Number.isFinite(e.firstTokenSeconds) ? ` · first after ${duration(e.firstTokenSeconds)}` : '');
    if (e.reason === 'aborted') lines.push(['note', `(answer stopped) ${stats}`]);
    else lines.push(['note', stats]);
    if (e.reason === 'length') lines.push(['note', `the answer stopped at the token limit (${count(e.generatedTokens)}); raise --max-tokens for more`]);
    if (e.reason === 'window') lines.push(['note', 'the answer stopped because the strategy ran out of positions']);
    this.set({ phase: 'idle', partial: '', stopping: false }, lines);
  }

  /** The run is over (finished or failed): nothing stays live. */
  close(): void {
    const partial = this.state.partial;
    const lines: Array<[LineKind, string]> = partial ? [['answer', partial]] : [];
    this.promptResolve?.({ kind: 'eof' });
    this.promptResolve = null;
    this.set({ phase: 'idle', partial: '', progress: null }, lines);
  }

  // --- chat ----------------------------------------------------------------------------------------

  /** Shows the prompt and waits for a question (or for the user to leave). */
  prompt(): Promise<PromptResult> {
    return new Promise((resolve) => {
      this.promptResolve = resolve;
      this.set({ phase: 'prompt', input: '', hint: PROMPT_HINT });
    });
  }

  /** While an answer is written, Ctrl-C calls `stop` (the chat aborts that answer only). */
  answering(stop: (() => void) | null): void {
    this.stopAnswer = stop;
  }

  /** A key from the terminal (chat only; the one-shot display takes no input). */
  key(input: string, key: KeyInfo): void {
    const s = this.state;
    if (key.ctrl && input === 'c') return this.ctrlC();
    if (s.phase !== 'prompt') return;
    if (key.return) return this.submit({ kind: 'line', text: s.input });
    if (key.ctrl && input === 'd') {
      if (!s.input) this.submit({ kind: 'eof' });
      return;
    }
    if (key.ctrl && input === 'u') return this.set({ input: '' });
    if (key.backspace || key.delete) return this.set({ input: [...s.input].slice(0, -1).join('') });
    if (key.ctrl || key.meta || key.escape || key.tab || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow) return;
    const text = forTerminal(input.replace(/\r?\n/g, ' '));
    if (text) this.set({ input: s.input + text });
  }

  private ctrlC(): void {
    const s = this.state;
    if (s.phase === 'prompt') {
      if (s.input) this.set({ input: '' });
      else this.submit({ kind: 'interrupt' });
      return;
    }
    if (s.phase === 'answering' && this.stopAnswer && !s.stopping) {
      this.set({ stopping: true });
      this.stopAnswer();
      return;
    }
    this.o.onHardInterrupt();
  }

  private submit(r: PromptResult): void {
    const resolve = this.promptResolve;
    this.promptResolve = null;
    this.set({ phase: 'idle', input: '' });
    resolve?.(r);
  }
}

function readSummary(e: Extract<RunEvent, { type: 'read' }>, s: UiState): string {
  const what = [s.strategy, s.backend].filter(Boolean).join(' · ');
  if (e.cached) return `document read from cache · ${count(e.tokens)} tokens in ${duration(e.seconds)}${what ? ` · ${what}` : ''}`;
  const rate = e.seconds > 0 ? ` (${count(e.tokens / e.seconds)} tok/s)` : '';
  const p = s.progress;
  const kv = p ? ` · KV ${formatBytes(p.kvBytes)}${p.compression > 1.05 ? ` ×${p.compression.toFixed(1)}` : ''}` : '';
  return `read ${count(e.tokens)} tokens in ${duration(e.seconds)}${rate}${kv}${what ? ` · ${what}` : ''}`;
}
