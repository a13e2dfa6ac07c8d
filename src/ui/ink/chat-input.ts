// The chat's prompt line and what the keys do to it: a pure reducer (reduceChatInput), tested alone
// in test/ui/ink/chat-input.test.ts (LM Studio's `lms` keeps its chat input the same way). It says
// what should happen — submit a line, stop the answer, end ctx — and store.ts does it.
//
//   Enter          submits the question
//   Alt+Enter      a new line in the question
//   text + Enter   arriving in one chunk (tmux send-keys 'text' Enter, a fast typist, an unbracketed
//                  paste of lines) submits each line in turn; the rest waits at the next prompt
//   a paste        with bracketed paste on (the terminal marks it: ESC[200~ … ESC[201~), all of it
//                  goes into the question, newlines included, and Enter asks it
//   Ctrl-C         at the prompt: clears the line, or on an empty one leaves (interrupt)
//                  during an answer: stops it; a second one before it has stopped ends ctx
//                  otherwise (reading): ends ctx
//   Ctrl-D         on an empty line: leaves normally (eof)
//   Ctrl-U         clears the line;  Backspace / Delete removes the last character
//   other control keys, Escape, Tab and arrows are ignored

import { forTerminal } from '../format.js';

export const PROMPT_HINT = 'Enter asks · Ctrl-C stops an answer, or quits at an empty prompt · /help';

export interface ChatInput {
  /** The question being typed (may hold newlines). */
  input: string;
  /** A one-line hint under it. */
  hint: string;
  /** Ctrl-C was pressed during this answer. */
  stopping: boolean;
  /** Inside a bracketed paste: text goes in as it is. */
  pasting: boolean;
  /** Whole lines that arrived together with an earlier one, asked at the next prompts in order. */
  queued: string[];
}

/** What Ink passes for the terminal's paste brackets (ESC[200~ and ESC[201~, the escape taken off). */
export const PASTE_START = '[200~';
export const PASTE_END = '[201~';

/** Asks the terminal to bracket pastes (written when the chat's prompt starts), and to stop. */
export const BRACKETED_PASTE_ON = '\u001b[?2004h';
export const BRACKETED_PASTE_OFF = '\u001b[?2004l';

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

/** What the chat is doing when a key arrives: at the prompt, writing an answer that can be stopped, or neither. */
export type ChatActivity = 'prompt' | 'answering' | 'busy';

export type ChatInputAction =
  | { type: 'key'; input: string; key: KeyInfo; activity: ChatActivity }
  /** A new prompt is shown (a queued line is asked at once). */
  | { type: 'prompt' }
  /** An answer began or ended: no stop is pending any more. */
  | { type: 'answer' };

/** What the caller must do after a key. */
export type ChatEffect =
  | { kind: 'submit'; result: PromptResult }
  | { kind: 'stopAnswer' }
  /** End ctx now (as Ctrl-C outside the chat would). */
  | { kind: 'hardInterrupt' };

export function initialChatInput(): ChatInput {
  return { input: '', hint: PROMPT_HINT, stopping: false, pasting: false, queued: [] };
}

export function reduceChatInput(s: ChatInput, a: ChatInputAction): { state: ChatInput; effect: ChatEffect | null } {
  switch (a.type) {
    case 'prompt': {
      if (s.queued.length === 0) return { state: { ...s, hint: PROMPT_HINT }, effect: null };
      const [next, ...rest] = s.queued;
      return { state: { ...s, hint: PROMPT_HINT, queued: rest }, effect: { kind: 'submit', result: { kind: 'line', text: next! } } };
    }
    case 'answer':
      return { state: { ...s, stopping: false }, effect: null };
    case 'key':
      return onKey(s, a.input, a.key, a.activity);
  }
}

function onKey(s: ChatInput, input: string, key: KeyInfo, activity: ChatActivity): { state: ChatInput; effect: ChatEffect | null } {
  const same = { state: s, effect: null };
  const edit = (text: string) => ({ state: { ...s, input: text }, effect: null });
  const submit = (result: PromptResult) => ({ state: { ...s, input: '', pasting: false }, effect: { kind: 'submit', result } as ChatEffect });

  if (key.ctrl && input === 'c') {
    if (activity === 'prompt') return s.input ? edit('') : submit({ kind: 'interrupt' });
    if (activity === 'answering' && !s.stopping) return { state: { ...s, stopping: true }, effect: { kind: 'stopAnswer' } };
    return { state: s, effect: { kind: 'hardInterrupt' } };
  }
  if (activity !== 'prompt') return same;
  if (input === PASTE_START || input === PASTE_END) return { state: { ...s, pasting: input === PASTE_START }, effect: null };
  if (s.pasting) return edit(s.input + clean(input.replace(/\r\n?/g, '\n')));
  if (key.return && key.meta) return edit(`${s.input}\n`);
  if (key.return) return submit({ kind: 'line', text: s.input });
  if (key.ctrl && input === 'd') return s.input ? same : submit({ kind: 'eof' });
  if (key.ctrl && input === 'u') return edit('');
  if (key.backspace || key.delete) return edit([...s.input].slice(0, -1).join(''));
  if (key.ctrl || key.meta || key.escape || key.tab || key.upArrow || key.downArrow || key.leftArrow || key.rightArrow) return same;
  // Line breaks inside a chunk end lines, as Enter would: the first is asked now, whole lines after
  // it wait their turn, and what follows the last break stays typed.
  const lines = input.split(/\r\n|\r|\n/).map(clean);
  if (lines.length === 1) return lines[0] ? edit(s.input + lines[0]) : same;
  const first = s.input + lines[0];
  return { state: { ...s, input: lines[lines.length - 1]!, queued: [...s.queued, ...lines.slice(1, -1)] }, effect: { kind: 'submit', result: { kind: 'line', text: first } } };
}

/** Typed or pasted text made safe to show (no control characters; newlines stay). */
function clean(text: string): string {
  return forTerminal(text);
}
