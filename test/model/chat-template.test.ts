// The chat template's own bounds (src/model/chat-template.ts): ctx's range() behaves as the library's
// within its cap, and only variables named range are redirected to it.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ChatTemplate, MAX_RANGE } from '../../src/model/chat-template.js';

const SPECIALS = { bos_token: null, eos_token: null, unk_token: null, pad_token: null };
const render = (source: string, timeMs?: number) => new ChatTemplate(source, SPECIALS, 'tpl.jinja', { timeMs }).render([{ role: 'user', content: 'hi' }], { addGenerationPrompt: false });

describe('chat template bounds', () => {
  it('range() gives what the library gives, steps and negative steps included', () => {
    assert.equal(render('{% for i in range(3) %}{{ i }}{% endfor %}'), '012');
    assert.equal(render('{% for i in range(2, 9, 3) %}{{ i }},{% endfor %}'), '2,5,8,');
    assert.equal(render('{% for i in range(3, 0, -1) %}{{ i }}{% endfor %}'), '321');
    assert.equal(render('{{ range(5) | length }}'), '5');
    assert.equal(render(`{{ range(${MAX_RANGE}) | length }}`), String(MAX_RANGE));
  });

  it('refuses a range past the cap, with the file', () => {
    assert.throws(() => render(`{{ range(${MAX_RANGE + 1}) | length }}`), /tpl\.jinja: chat template failed: range\(\) of 100001 items is more than ctx allows/);
  });

  it('attributes and keyword arguments named range are left alone', () => {
    assert.equal(render("{% set ns = namespace(range='r') %}{{ ns.range }}"), 'r');
  });

  it('stops a template that runs past its deadline', () => {
    const t0 = performance.now();
    assert.throws(() => render('{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}', 200), /tpl\.jinja: chat template took more than 200 ms to render/);
    assert.ok(performance.now() - t0 < 5000);
  });
});
