// The Ink display as a Renderer: run events go into the store (store.ts), Ink draws it (app.tsx).
// Used on a terminal (pick.ts decides); `ctx chat` also reads questions through it.

import type { Readable, Writable } from 'node:stream';
import type { ReactElement } from 'react';
import { render, type Instance } from 'ink';
import type { Renderer, RunEvent } from '../events.js';
import { App } from './app.js';
import { BRACKETED_PASTE_OFF, BRACKETED_PASTE_ON, type PromptResult } from './chat-input.js';
import type { LineKind } from './run-view.js';
import { UiStore } from './store.js';

export interface InkRendererOptions {
  stdout: Writable;
  stderr: Writable;
  /** Given for chat: keys are read from it (raw mode). */
  stdin?: Readable;
  stream: boolean;
}

export class InkRenderer implements Renderer {
  readonly store: UiStore;
  private readonly instance: Instance;
  private readonly app: ReactElement;
  private closed = false;
  private readonly bracketedPaste: boolean;
  private readonly stdout: Writable;

  constructor(o: InkRendererOptions) {
    const stdout = o.stdout as NodeJS.WriteStream;
    this.stdout = o.stdout;
    this.store = new UiStore({
      columns: () => stdout.columns || 80,
      stream: o.stream,
      // Ctrl-C arrives as a key in raw mode; when it must end the process, it becomes the signal
      // ctx already handles (abort the run, "ctx: interrupted", exit 130).
      onHardInterrupt: () => process.kill(process.pid, 'SIGINT'),
    });
    this.app = <App store={this.store} interactive={o.stdin !== undefined} />;
    this.instance = render(this.app, {
      stdout,
      stderr: o.stderr as NodeJS.WriteStream,
      // Ink reads keys only from the chat's stdin; left out, it keeps its default and never touches it.
      ...(o.stdin ? { stdin: o.stdin as NodeJS.ReadStream } : {}),
      exitOnCtrlC: false,
      patchConsole: false,
    });
    // Chat: the terminal marks pastes, so a pasted block of lines becomes one question (chat-input.ts).
    this.bracketedPaste = o.stdin !== undefined;
    if (this.bracketedPaste) stdout.write(BRACKETED_PASTE_ON);
  }

  event(e: RunEvent): void {
    if (!this.closed) this.store.apply(e);
  }

  finish(): void {
    this.close();
  }

  /** ctx prints the error line itself (stderr) once the display is down. */
  fail(): void {
    this.close();
  }

  /** Chat: waits for the next question. */
  prompt(): Promise<PromptResult> {
    if (this.closed) return Promise.resolve({ kind: 'eof' });
    return this.store.prompt();
  }

  /** Chat: lines of its own (help, confirmations, errors) above the live region. */
  say(kind: LineKind, ...lines: string[]): void {
    if (!this.closed) this.store.commit(kind, ...lines);
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.store.close();
    // React applies store changes in a later microtask; rendering again now flushes them, so the
    // last lines are on screen before Ink lets go of the terminal (and before any error line).
    this.instance.rerender(this.app);
    this.instance.unmount();
    if (this.bracketedPaste) this.stdout.write(BRACKETED_PASTE_OFF);
  }
}
