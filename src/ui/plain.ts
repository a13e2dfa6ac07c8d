// Plain output for pipes and scripts: the answer alone on stdout; progress and warnings on stderr.
//
//   stderr is a terminal      an ora spinner line with the progress, ending in "✔ read …"
//   stderr is not a terminal  a few milestone lines (0%, 25%, 50%, 75%, 100%)
//   --quiet                   nothing on stderr; the answer only
// After each answer, stderr gets how fast it was written: "12 tokens in 3.0 s (4.0 tok/s)".

import type { Writable } from 'node:stream';
import ora, { type Ora } from 'ora';
import { formatBytes } from '../units.js';
import type { Renderer, RunEvent } from './events.js';
import { answerSpeed, count, counted, downloadLine, duration, escapeControls, planLine, sectionLine } from './format.js';

export interface PlainOptions {
  stdout: Writable;
  stderr: Writable;
  stderrIsTTY: boolean;
  /** stdout is a terminal: the answer's control characters are shown escaped. Default false. */
  stdoutIsTTY?: boolean;
  quiet: boolean;
  stream: boolean;
}

export function progressLine(e: Extract<RunEvent, { type: 'progress' }>): string {
  const pct = e.total ? Math.floor((100 * e.done) / e.total) : 100;
  const eta = Number.isFinite(e.etaSeconds) ? ` · ETA ${duration(e.etaSeconds)}` : '';
  const squeeze = e.compression > 1.05 ? ` · ×${e.compression.toFixed(1)}` : '';
  return `reading ${count(e.done)}/${count(e.total)} tokens (${pct}%) · ${count(e.tokensPerSecond)} tok/s${eta} · KV ${formatBytes(e.kvBytes)}${squeeze}`;
}

export class PlainRenderer implements Renderer {
  private spinner: Ora | null = null;
  private milestone = 0;
  private buffered = '';
  private endsWithNewline = true;
  private closed = false;

  constructor(private readonly o: PlainOptions) {}

  event(e: RunEvent): void {
    if (this.closed) return;
    switch (e.type) {
      case 'skipped':
        this.note(`skipped ${e.path}: ${e.reason}`);
        break;
      case 'warning':
        this.note(`warning: ${e.message}`);
        break;
      case 'download':
        if (this.o.stderrIsTTY) this.status(downloadLine(e));
        else if (e.total !== null && e.done === e.total) this.note(downloadLine(e));
        break;
      case 'tokenize':
        if (this.o.stderrIsTTY && e.totalChars > 0) this.status(`tokenizing ${Math.floor((100 * e.doneChars) / e.totalChars)}%`);
        break;
      case 'plan':
        this.note(planLine(e));
        for (const note of e.notes) this.note(`note: ${note}`);
        break;
      case 'progress':
        if (this.o.stderrIsTTY) this.status(progressLine(e));
        else if (e.total && e.done / e.total >= this.milestone / 4 && this.milestone <= 4) {
          while (this.milestone <= 4 && e.done / e.total >= this.milestone / 4) this.milestone++;
          this.note(progressLine(e));
        }
        break;
      case 'read': {
        const text = e.cached
          ? `document read from cache (${counted(e.tokens, 'token')})`
          : `read ${counted(e.tokens, 'token')} in ${duration(e.seconds)}`;
        if (this.spinner) {
          this.spinner.succeed(text);
          this.spinner = null;
        } else {
          this.note(text);
        }
        break;
      }
      case 'section':
        this.note(sectionLine(e));
        break;
      case 'token':
        this.stopSpinner();
        if (this.o.stream) this.write(e.text);
        else this.buffered += e.text;
        break;
      case 'answer':
        if (!this.o.stream) this.write(this.buffered);
        this.buffered = '';
        if (!this.endsWithNewline) this.write('\n');
        this.note(answerSpeed(e));
        if (e.reason === 'length') this.note(`note: the answer stopped at the token limit (${count(e.generatedTokens)}); raise --max-tokens for more`);
        if (e.reason === 'window') this.note('note: the answer stopped because the strategy ran out of positions');
        break;
      default:
        break;
    }
  }

  finish(): void {
    this.stopSpinner();
    this.closed = true;
  }

  fail(): void {
    this.stopSpinner();
    this.closed = true;
  }

  /** The one live progress line (terminal only). */
  private status(line: string): void {
    if (this.o.quiet) return;
    const text = escapeControls(line);
    if (this.spinner) {
      this.spinner.text = text;
      return;
    }
    // discardStdin would put stdin in raw mode: Ctrl-C must stay a signal, and stdin may be the document.
    this.spinner = ora({ text, stream: this.o.stderr as NodeJS.WritableStream, discardStdin: false, isEnabled: true }).start();
  }

  private stopSpinner(): void {
    this.spinner?.stop();
    this.spinner = null;
  }

  private write(text: string): void {
    if (!text) return;
    this.o.stdout.write(this.o.stdoutIsTTY ? escapeControls(text) : text);
    this.endsWithNewline = text.endsWith('\n');
  }

  /** A line on stderr, above the spinner if one runs. File names in it are shown escaped on a terminal. */
  private note(line: string): void {
    if (this.o.quiet) return;
    const text = this.o.stderrIsTTY ? escapeControls(line) : line;
    if (this.spinner) {
      this.spinner.clear();
      this.o.stderr.write(`${text}\n`);
      this.spinner.render();
    } else {
      this.o.stderr.write(`${text}\n`);
    }
  }
}
