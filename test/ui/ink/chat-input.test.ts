// The chat's prompt line as a pure reducer: what each key does to the line and what it asks the
// chat to do, at the prompt, during an answer, and while reading — no Ink, no store.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { initialChatInput, PROMPT_HINT, reduceChatInput, type ChatActivity, type ChatInput, type KeyInfo } from '../../../src/ui/ink/chat-input.js';

/** Types `keys` one after another (a string is a plain key; [input, key] a special one). */
function typeKeys(keys: Array<string | [string, KeyInfo]>, activity: ChatActivity = 'prompt', from: ChatInput = initialChatInput()) {
  let state = from;
  const effects = [];
  for (const k of keys) {
    const [input, key] = typeof k === 'string' ? [k, {}] : k;
    const r = reduceChatInput(state, { type: 'key', input, key, activity });
    state = r.state;
    if (r.effect) effects.push(r.effect);
  }
  return { state, effects };
}

describe('chat input', () => {
  it('typing, backspace and Enter: the line is submitted and emptied', () => {
    const { state, effects } = typeKeys(['h', 'e', 'y', ['', { backspace: true }], 'i', '?', ['\r', { return: true }]]);
    assert.deepEqual(effects, [{ kind: 'submit', result: { kind: 'line', text: 'hei?' } }]);
    assert.equal(state.input, '');
  });

  it('a pasted chunk with a newline inside stays one line; control keys and arrows are ignored', () => {
    const { state, effects } = typeKeys(['one\ntwo', ['', { upArrow: true }], ['x', { ctrl: true }], ['', { tab: true }]]);
    assert.deepEqual([state.input, effects], ['one two', []]);
  });

  it('Ctrl-U clears; Ctrl-D leaves only on an empty line', () => {
    assert.deepEqual(typeKeys(['abc', ['u', { ctrl: true }]]).state.input, '');
    assert.deepEqual(typeKeys(['abc', ['d', { ctrl: true }]]).effects, []);
    assert.deepEqual(typeKeys([['d', { ctrl: true }]]).effects, [{ kind: 'submit', result: { kind: 'eof' } }]);
  });

  it('Ctrl-C at the prompt clears a typed line, then leaves as interrupted', () => {
    const { state, effects } = typeKeys(['abc', ['c', { ctrl: true }], ['c', { ctrl: true }]]);
    assert.equal(state.input, '');
    assert.deepEqual(effects, [{ kind: 'submit', result: { kind: 'interrupt' } }]);
  });

  it('during an answer: the first Ctrl-C stops it, a second ends ctx, other keys do nothing', () => {
    const { state, effects } = typeKeys(['x', ['c', { ctrl: true }], ['\r', { return: true }], ['c', { ctrl: true }]], 'answering');
    assert.deepEqual(effects, [{ kind: 'stopAnswer' }, { kind: 'hardInterrupt' }]);
    assert.deepEqual([state.input, state.stopping], ['', true]);
    const next = reduceChatInput(state, { type: 'answer' }).state;
    assert.equal(next.stopping, false, 'the next answer can be stopped again');
  });

  it('while reading, Ctrl-C ends ctx at once and typing is ignored', () => {
    assert.deepEqual(typeKeys(['x', ['c', { ctrl: true }]], 'busy'), { state: initialChatInput(), effects: [{ kind: 'hardInterrupt' }] });
  });

  it('a new prompt starts empty with the hint', () => {
    const { state } = reduceChatInput({ input: 'left over', hint: 'other', stopping: false }, { type: 'prompt' });
    assert.deepEqual(state, { input: '', hint: PROMPT_HINT, stopping: false });
  });
});
