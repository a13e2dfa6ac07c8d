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

  it('control keys and arrows are ignored', () => {
    const { state, effects } = typeKeys(['one', ['', { upArrow: true }], ['x', { ctrl: true }], ['', { tab: true }]]);
    assert.deepEqual([state.input, effects], ['one', []]);
  });

  it('text and its Enter in one chunk (tmux send-keys, a fast typist) submit it; later lines wait for the next prompts', () => {
    assert.deepEqual(typeKeys(['what is it?\r']).effects, [{ kind: 'submit', result: { kind: 'line', text: 'what is it?' } }]);
    const { state, effects } = typeKeys(['fir', 'st\rsecond\r\nthird\nfour']);
    assert.deepEqual(effects, [{ kind: 'submit', result: { kind: 'line', text: 'first' } }]);
    assert.deepEqual([state.queued, state.input], [['second', 'third'], 'four']);
    const next = reduceChatInput(state, { type: 'prompt' });
    assert.deepEqual(next.effect, { kind: 'submit', result: { kind: 'line', text: 'second' } }, 'the next prompt asks the queued line at once');
    assert.deepEqual(next.state.queued, ['third']);
  });

  it('a bracketed paste is one multi-line question, asked with Enter; Alt+Enter adds a line by hand', () => {
    const { state, effects } = typeKeys(['Summarize: ', '[200~', 'line one\r\nline two\n', 'line three', '[201~', ['\r', { return: true, meta: true }], 'end']);
    assert.deepEqual(effects, []);
    assert.equal(state.input, 'Summarize: line one\nline two\nline three\nend');
    assert.equal(state.pasting, false);
    assert.deepEqual(typeKeys([['\r', { return: true }]], 'prompt', state).effects, [{ kind: 'submit', result: { kind: 'line', text: 'Summarize: line one\nline two\nline three\nend' } }]);
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

  it('a new prompt shows the hint', () => {
    const { state, effect } = reduceChatInput({ ...initialChatInput(), hint: 'other' }, { type: 'prompt' });
    assert.deepEqual([state, effect], [initialChatInput(), null]);
    assert.equal(state.hint, PROMPT_HINT);
  });
});
