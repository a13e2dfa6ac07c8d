// Plain output for pipes and scripts: the answer alone on stdout; progress and warnings on stderr
// (one self-updating line on a terminal, a few milestone lines otherwise; nothing with --quiet).

import type { Writable } from 'node:stream';
import { formatBytes } from '../engine/plan.js';
import type { Renderer, RunEvent } from './events.js';

export interface PlainOptions {
  stdout: Writable;
  stderr: Writable;
  stderrIsTTY: boolean;
  quiet: boolean;
  stream: boolean;
}

const n = (x: number) => Math.round(x).toLocaleString('en-US');

export function progressLine(e: Extract<RunEvent, { type: 'progress' }>): string {
  const pct = e.total ? Math.floor((100 * e.done) / e.total) : 100;
  const eta = Number.isFinite(e.etaSeconds) ? ` · ETA ${Math.ceil(e.etaSeconds)} s` : '';
  const squeeze = e.compression > 1.05 ? ` · ×${e.compression.toFixed(1)}` : '';
  return `reading ${n(e.done)}/${n(e.total)} tokens (${pct}%) · ${n(e.tokensPerSecond)} tok/s${eta} · KV ${formatBytes(e.kvBytes)}${squeeze}`;
}

export class PlainRenderer implements Renderer {
  private live = false; // a progress line is on screen and must be cleared
  private milestone = 0;
  private buffered = '';
  private endsWithNewline = true;

  constructor(private readonly o: PlainOptions) {}

  private status(text: string): void {
    if (this.o.quiet) return;
    if (this.o.stderrIsTTY) {
      this.o.stderr.write(`\r\x1b[2K${text}`);
      this.live = true;
    } else {
      this.o.stderr.write(`${text}\n`);
    }
  }

  private clearStatus(): void {
    if (this.live) this.o.stderr.write('\r\x1b[2K');
    this.live = false;
  }

  event(e: RunEvent): void {
    switch (e.type) {
      case 'skipped':
        if (!this.o.quiet) this.note(`skipped ${e.path}: ${e.reason}`);
        break;
      case 'warning':
        if (!this.o.quiet) this.note(`warning: ${e.message}`);
        break;
      case 'plan':
        if (!this.o.quiet) {
          this.note(`${n(e.documentTokens)} tokens · ${e.strategy} · KV ${formatBytes(e.kvBytes)}`);
          for (const note of e.notes) this.note(`note: ${note}`);
        }
        break;
      case 'progress': {
        if (this.o.stderrIsTTY) this.status(progressLine(e));
        else if (e.total && e.done / e.total >= this.milestone / 4 && this.milestone <= 4) {
          while (this.milestone <= 4 && e.done / e.total >= this.milestone / 4) this.milestone++;
          this.status(progressLine(e));
        }
        break;
      }
      case 'read':
        this.clearStatus();
        if (!this.o.quiet) this.note(e.cached ? `document read from cache (${n(e.tokens)} tokens)` : `read ${n(e.tokens)} tokens in ${e.seconds.toFixed(1)} s`);
        break;
      case 'token':
        this.clearStatus();
        if (this.o.stream) this.write(e.text);
        else this.buffered += e.text;
        break;
      case 'answer':
        if (!this.o.stream) this.write(this.buffered);
        this.buffered = '';
        if (!this.endsWithNewline) this.write('\n');
        if (e.reason === 'length' && !this.o.quiet) this.note(`note: the answer stopped at the token limit (${n(e.generatedTokens)}); raise --max-tokens for more`);
        if (e.reason === 'window' && !this.o.quiet) this.note('note: the answer stopped because the strategy ran out of positions');
        break;
      default:
        break;
    }
  }

  private write(text: string): void {
    if (!text) return;
    this.o.stdout.write(text);
    this.endsWithNewline = text.endsWith('\n');
  }

  private note(text: string): void {
    this.clearStatus();
    this.o.stderr.write(`${text}\n`);
  }

  finish(): void {
    this.clearStatus();
  }
}
