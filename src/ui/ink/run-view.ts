// What the Ink display shows of a run, and how each run event changes it: a pure reducer
// (applyEvent), tested alone in test/ui/ink/run-view.test.ts. store.ts holds the current view and
// app.tsx draws it.
//
// The screen has two parts:
//   - committed lines, printed once above everything (Ink's <Static>): the read summary, the
//     questions, every finished row of an answer, notes and warnings;
//   - a small live region redrawn as things change: the reading progress, the row of the answer
//     being written, or the chat prompt.
// An answer is cut into rows as it streams (format.ts takeRows), so a long answer never makes Ink
// redraw more than one row per token.

import type { ReadProgress, RunEvent } from '../../engine/events.js';
import { formatBytes } from '../../units.js';
import { count, counted, duration, escapeControls, forTerminal, planLine, sectionLine, takeRows } from '../format.js';

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

export interface RunView {
  lines: Line[];
  /** The id the next committed line gets. */
  nextLineId: number;
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
  /** --no-stream: the answer's text until it is complete. */
  held: string;
  /** Pieces of the current answer so far, and when it started (performance.now ms). */
  answerPieces: number;
  answerStartedAt: number;
}

/** What applyEvent needs from outside: the terminal's width now, the clock, and --no-stream. */
export interface ViewContext {
  columns: number;
  /** Stream the answer (false: show it when complete). */
  stream: boolean;
  now: number;
}

export function initialView(columns: number): RunView {
  return {
    lines: [],
    nextLineId: 0,
    phase: 'opening',
    columns,
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
    held: '',
    answerPieces: 0,
    answerStartedAt: 0,
  };
}

/** `view` with `patch` applied and `commit` lines printed above the live region. */
export function withLines<V extends RunView>(view: V, patch: Partial<RunView>, commit: Array<[LineKind, string]> = [], columns = view.columns): V {
  const lines = commit.length ? [...view.lines, ...commit.map(([kind, text], i) => ({ id: view.nextLineId + i, kind, text }))] : view.lines;
  return { ...view, ...patch, lines, nextLineId: view.nextLineId + commit.length, columns };
}

/** The view after one run event. */
export function applyEvent<V extends RunView>(s: V, e: RunEvent, ctx: ViewContext): V {
  const set = (patch: Partial<RunView>, commit: Array<[LineKind, string]> = []) => withLines(s, patch, commit, ctx.columns);
  switch (e.type) {
    case 'source':
      return set({ sources: s.sources + 1 });
    case 'skipped':
      return set({ skipped: s.skipped + 1 }, [['warning', escapeControls(`skipped ${e.path}: ${e.reason}`)]]);
    case 'warning':
      return set({}, [['warning', escapeControls(`warning: ${e.message}`)]]);
    case 'download':
      return set({ download: { file: e.file, done: e.done, total: e.total } });
    case 'model':
      return set({ backend: `${e.backend} ${e.numeric}`, download: null });
    case 'tokenize':
      return set({ tokenize: { doneChars: e.doneChars, totalChars: e.totalChars } });
    case 'plan':
      return set(
        { phase: 'reading', strategy: e.strategy, documentTokens: e.documentTokens, sourceEnds: e.sourceEnds ?? [] },
        [['info', planLine(e)], ...e.notes.map((n) => ['note', `note: ${n}`] as [LineKind, string])],
      );
    case 'progress': {
      const { type: _type, ...progress } = e;
      return set({ phase: 'reading', progress });
    }
    case 'read':
      return set({ phase: 'idle', progress: null, tokenize: null }, [['info', readSummary(e, s)]]);
    case 'section':
      return set({}, [['info', sectionLine(e)]]);
    case 'citations':
      return set(
        {},
        e.citations.map((c) => ['note', c.valid ? `  ${c.text} → ${[c.path, c.page && `p. ${c.page}`, c.line && `line ${c.line}`].filter(Boolean).join(' ')}` : `  ${c.text} (not found in the inputs)`] as [LineKind, string]),
      );
    case 'question':
      return set(
        { phase: 'answering', partial: '', held: '', answerPieces: 0, answerStartedAt: ctx.now },
        [['blank', ''], ['question', `❯ ${forTerminal(e.text).replace(/\n/g, ' ')}`], ['blank', '']],
      );
    case 'token':
      if (!ctx.stream) return set({ held: s.held + e.text, answerPieces: s.answerPieces + 1 });
      return addAnswerText(s, e.text, s.answerPieces + 1, ctx.columns);
    case 'answer':
      return finishAnswer(s, e, ctx);
    default:
      return s;
  }
}

/** Shows the chat prompt. */
export function promptView<V extends RunView>(s: V): V {
  return withLines(s, { phase: 'prompt' });
}

/** The run is over (finished or failed): the last partial row is committed, nothing stays live. */
export function closeView<V extends RunView>(s: V): V {
  return withLines(s, { phase: 'idle', partial: '', progress: null }, s.partial ? [['answer', s.partial]] : []);
}

function addAnswerText<V extends RunView>(s: V, text: string, pieces: number, columns: number): V {
  const { rows, rest } = takeRows(s.partial + forTerminal(text), columns);
  return withLines(s, { partial: rest, answerPieces: pieces }, rows.map((r) => ['answer', r] as [LineKind, string]), columns);
}

function finishAnswer<V extends RunView>(s: V, e: Extract<RunEvent, { type: 'answer' }>, ctx: ViewContext): V {
  const shown = ctx.stream ? s : addAnswerText(s, s.held, s.answerPieces, ctx.columns);
  const lines: Array<[LineKind, string]> = shown.partial ? [['answer', shown.partial]] : [];
  const stats = `${counted(e.generatedTokens, 'token')} in ${duration(e.seconds)}` + (Number.isFinite(e.firstTokenSeconds) ? ` · first after ${duration(e.firstTokenSeconds)}` : '');
  lines.push(['note', e.reason === 'aborted' ? `(answer stopped) ${stats}` : stats]);
  if (e.reason === 'length') lines.push(['note', `the answer stopped at the token limit (${count(e.generatedTokens)}); raise --max-tokens for more`]);
  if (e.reason === 'window') lines.push(['note', 'the answer stopped because the strategy ran out of positions']);
  return withLines(shown, { phase: 'idle', partial: '', held: '' }, lines, ctx.columns);
}

function readSummary(e: Extract<RunEvent, { type: 'read' }>, s: RunView): string {
  const what = [s.strategy, s.backend].filter(Boolean).join(' · ');
  if (e.cached) return `document read from cache · ${counted(e.tokens, 'token')} in ${duration(e.seconds)}${what ? ` · ${what}` : ''}`;
  const rate = e.seconds > 0 ? ` (${count(e.tokens / e.seconds)} tok/s)` : '';
  const p = s.progress;
  const kv = p ? ` · KV ${formatBytes(p.kvBytes)}${p.compression > 1.05 ? ` ×${p.compression.toFixed(1)}` : ''}` : '';
  return `read ${counted(e.tokens, 'token')} in ${duration(e.seconds)}${rate}${kv}${what ? ` · ${what}` : ''}`;
}
