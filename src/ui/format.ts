// Small text helpers the renderers share: numbers, durations, a progress bar, and cutting streamed
// answer text into terminal rows.

import { formatBytes } from '../units.js';

/** 1234567 → "1,234,567". */
export function count(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** "1 token", "2,048 tokens": a count with its noun, singular for one. */
export function counted(n: number, noun: string): string {
  return `${count(n)} ${noun}${Math.round(n) === 1 ? '' : 's'}`;
}

/** "12 tokens in 3.0 s (4.0 tok/s)": how fast an answer was written. */
export function answerSpeed(e: { generatedTokens: number; seconds: number }): string {
  const rate = e.seconds > 0 ? ` (${(e.generatedTokens / e.seconds).toFixed(1)} tok/s)` : '';
  return `${counted(e.generatedTokens, 'token')} in ${duration(e.seconds)}${rate}`;
}

/** Seconds as people read them: "0.4 s", "42 s", "4 min 05 s", "1 h 02 min". */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** A bar `width` cells wide, filled to `fraction` (0..1). */
export function bar(fraction: number, width: number): string {
  const f = Math.min(1, Math.max(0, Number.isFinite(fraction) ? fraction : 0));
  const filled = Math.round(f * width);
  return '█'.repeat(filled) + '░'.repeat(Math.max(0, width - filled));
}

const ZERO_WIDTH = /[\p{Mn}\p{Me}\p{Cf}]/u;

/** East Asian wide and emoji ranges: two terminal cells each. */
function isWide(cp: number): boolean {
  return (
    (cp >= 0x1100 && cp <= 0x115f) ||
    (cp >= 0x2e80 && cp <= 0x303e) ||
    (cp >= 0x3041 && cp <= 0x33ff) ||
    (cp >= 0x3400 && cp <= 0x4dbf) ||
    (cp >= 0x4e00 && cp <= 0x9fff) ||
    (cp >= 0xa000 && cp <= 0xa4cf) ||
    (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) ||
    (cp >= 0xfe30 && cp <= 0xfe4f) ||
    (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) ||
    (cp >= 0x1f300 && cp <= 0x1f64f) ||
    (cp >= 0x1f900 && cp <= 0x1f9ff) ||
    (cp >= 0x20000 && cp <= 0x3fffd)
  );
}

/** Terminal cells one character takes (0 for combining marks and format characters). */
function charWidth(ch: string): number {
  const cp = ch.codePointAt(0)!;
  if (cp < 0x20 || (cp >= 0x7f && cp < 0xa0)) return 0;
  if (cp >= 0x300 && ZERO_WIDTH.test(ch)) return 0;
  return isWide(cp) ? 2 : 1;
}

/** Terminal cells a string takes (no escape sequences expected: see forTerminal). */
export function cellWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += charWidth(ch);
  return w;
}

/**
 * Model output made safe for a terminal: tabs become spaces, carriage returns go, and other
 * control characters (an escape sequence from a model could move the cursor) are dropped.
 */
export function forTerminal(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\t/g, '    ').replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, '');
}

/**
 * Untrusted text (a file name, a model's answer, a message quoting them) as a terminal should show
 * it: control characters other than line breaks and tabs are written as \\xNN, so none can move the
 * cursor, retitle the window or clear the screen; the text stays readable and nothing is hidden.
 * Output that is not a terminal (a pipe, a file, JSON) keeps the exact text.
 */
export function escapeControls(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Whether a stream is a terminal. */
export function isTerminal(s: unknown): boolean {
  return Boolean((s as { isTTY?: boolean } | null)?.isTTY);
}

/** Where a row of at most `width` cells ends in `line`: after its last space that fits, else mid-word. */
function breakAt(line: string, width: number): { end: number; next: number } {
  let w = 0;
  let lastSpace = -1;
  let i = 0;
  for (const ch of line) {
    const cw = charWidth(ch);
    if (w + cw > width) {
      if (ch === ' ') return { end: i, next: i + 1 }; // the row fits exactly, up to this space
      break;
    }
    w += cw;
    if (ch === ' ') lastSpace = i;
    i += ch.length;
  }
  if (lastSpace > 0) return { end: lastSpace, next: lastSpace + 1 };
  return { end: Math.max(i, 1), next: Math.max(i, 1) };
}

/**
 * Cuts streamed text into finished rows and the unfinished rest. A row ends at a newline, or where
 * text wider than `width` is wrapped (at a space when there is one). Finished rows never change,
 * so a display can print them once and keep only the rest live.
 */
export function takeRows(text: string, width: number): { rows: string[]; rest: string } {
  const rows: string[] = [];
  const w = Math.max(8, width);
  let rest = text;
  for (;;) {
    const nl = rest.indexOf('\n');
    const line = nl >= 0 ? rest.slice(0, nl) : rest;
    if (cellWidth(line) > w) {
      const { end, next } = breakAt(line, w);
      rows.push(line.slice(0, end).trimEnd());
      rest = rest.slice(next);
      continue;
    }
    if (nl < 0) return { rows, rest };
    rows.push(line);
    rest = rest.slice(nl + 1);
  }
}

/** "summarizing pp. 12–24 (3/7 done)": the step now running of a multi-step summary. */
export function sectionLine(e: { done: number; total: number; label: string }): string {
  return `summarizing ${e.label} (${e.done}/${e.total} done)`;
}

/** "downloading model.safetensors 1.2 GiB / 3.1 GiB (38%)" (sizes as everywhere: units.ts). */
export function downloadLine(e: { file: string; done: number; total: number | null }): string {
  if (e.total === null || e.total <= 0) return `downloading ${e.file} ${formatBytes(e.done)}`;
  return `downloading ${e.file} ${formatBytes(e.done)} / ${formatBytes(e.total)} (${Math.floor((100 * e.done) / e.total)}%)`;
}

/**
 * The plan line: "108,889 tokens · select (init 128 + top 2048 + local 512), auto: … · KV 2.1 GiB".
 * The token count is the document's, citation markers included, as inspect and progress count it.
 */
export function planLine(e: { documentTokens: number; strategy: string; strategyReason?: string; kvBytes: number }): string {
  const why = e.strategyReason ? `, auto: ${e.strategyReason}` : '';
  return `${counted(e.documentTokens, 'token')} · ${e.strategy}${why} · KV ${formatBytes(e.kvBytes)}`;
}
