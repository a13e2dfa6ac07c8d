// The state behind the Ink display: the run view (run-view.ts, changed by run events) and the chat's
// prompt line (chat-input.ts, changed by keys), both pure reducers; this file holds the current
// state, tells React when it changes (useSyncExternalStore), and carries out what a key asks for —
// resolving the prompt, stopping the answer, ending ctx. app.tsx draws it.

import type { RunEvent } from '../../engine/events.js';
import { initialChatInput, reduceChatInput, type ChatActivity, type ChatEffect, type ChatInput, type ChatInputAction, type KeyInfo, type PromptResult } from './chat-input.js';
import { applyEvent, closeView, initialView, promptView, withLines, type LineKind, type RunView } from './run-view.js';

export type { KeyInfo, PromptResult } from './chat-input.js';
export { PROMPT_HINT } from './chat-input.js';
export type { Line, LineKind, Phase } from './run-view.js';

export type UiState = RunView & ChatInput;

export interface StoreOptions {
  /** The terminal's width now (read at every change, so a resize applies to what follows). */
  columns: () => number;
  /** Stream the answer (false: show it when complete, --no-stream). */
  stream: boolean;
  /** Ctrl-C that must end the process now (while reading, or a second one during an answer). */
  onHardInterrupt: () => void;
  now?: () => number;
}

export class UiStore {
  private state: UiState;
  private readonly listeners = new Set<() => void>();
  private readonly now: () => number;
  private promptResolve: ((r: PromptResult) => void) | null = null;
  /** Chat: stops the answer being written (set while one is). */
  private stopAnswer: (() => void) | null = null;

  constructor(private readonly o: StoreOptions) {
    this.now = o.now ?? (() => performance.now());
    this.state = { ...initialView(o.columns()), ...initialChatInput() };
  }

  // --- for React (useSyncExternalStore) ---------------------------------------------------------

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  getState = (): UiState => this.state;

  private set(next: UiState): void {
    this.state = { ...next, columns: this.o.columns() };
    for (const l of this.listeners) l();
  }

  private input(a: ChatInputAction): ChatEffect | null {
    const { state, effect } = reduceChatInput(this.state, a);
    this.set({ ...this.state, ...state });
    return effect;
  }

  /** Prints lines above the live region, once. */
  commit(kind: LineKind, ...texts: string[]): void {
    this.set(withLines(this.state, {}, texts.map((t) => [kind, t])));
  }

  // --- run events --------------------------------------------------------------------------------

  apply(e: RunEvent): void {
    this.set(applyEvent(this.state, e, { columns: this.o.columns(), stream: this.o.stream, now: this.now() }));
    if (e.type === 'question' || e.type === 'answer') this.input({ type: 'answer' });
  }

  /** The run is over (finished or failed): nothing stays live. */
  close(): void {
    this.promptResolve?.({ kind: 'eof' });
    this.promptResolve = null;
    this.set(closeView(this.state));
  }

  // --- chat ----------------------------------------------------------------------------------------

  /** Shows the prompt and waits for a question (or for the user to leave). */
  prompt(): Promise<PromptResult> {
    return new Promise((resolve) => {
      this.promptResolve = resolve;
      this.set(promptView(this.state));
      const effect = this.input({ type: 'prompt' }); // a line that arrived with an earlier one is asked at once
      if (effect) this.carryOut(effect);
    });
  }

  /** While an answer is written, Ctrl-C calls `stop` (the chat aborts that answer only). */
  answering(stop: (() => void) | null): void {
    this.stopAnswer = stop;
  }

  /** A key from the terminal (chat only; the one-shot display takes no input). */
  key(input: string, key: KeyInfo): void {
    const effect = this.input({ type: 'key', input, key, activity: this.activity() });
    if (effect) this.carryOut(effect);
  }

  private carryOut(effect: ChatEffect): void {
    switch (effect.kind) {
      case 'submit': {
        const resolve = this.promptResolve;
        this.promptResolve = null;
        this.set(withLines(this.state, { phase: 'idle' }));
        resolve?.(effect.result);
        break;
      }
      case 'stopAnswer':
        this.stopAnswer?.();
        break;
      case 'hardInterrupt':
        this.o.onHardInterrupt();
        break;
    }
  }

  private activity(): ChatActivity {
    if (this.state.phase === 'prompt') return 'prompt';
    if (this.state.phase === 'answering' && this.stopAnswer) return 'answering';
    return 'busy';
  }
}
