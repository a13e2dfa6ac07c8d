// The prompt's format: the model's chat template, plain text (--raw), a named template or a Jinja
// file (--template); a model without a template is told about before reading; an empty answer is
// never silent.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fixtureModel } from '../../scripts/make-fixture-models.js';
import { Conversation } from '../../src/engine/conversation.js';
import { formatNote, promptFormat } from '../../src/engine/prompt-format.js';
import { emptyAnswerWarning } from '../../src/engine/reader.js';
import { isCtxError, openDocument, type RunEvent } from '../../src/index.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { REPO_ROOT, scratchDir } from '../helpers/fixtures.js';

const dir = scratchDir('prompt-format');
const docPath = join(dir, 'doc.txt');
writeFileSync(docPath, 'The answer is 42.\n');
const demoModel = join(REPO_ROOT, 'models', 'needle-demo');

/** The text a conversation puts around a document "DOC" and a question "Q?". */
function around(c: Conversation, decode: (ids: Int32Array) => string): string {
  return `${decode(c.documentPrefix())}DOC${decode(c.firstQuestion('Q?'))}`;
}

describe('prompt formats', () => {
  it("the model's template by default; --raw gives the plain prompt; a named template or a Jinja file replaces it", async () => {
    const tok = await loadTokenizer(fixtureModel('tiny'));
    const decode = (ids: Int32Array) => tok.decode(ids);
    const model = around(new Conversation(tok), decode);
    assert.match(model, /<\|im_start\|>user\nDOC\n\nQ\?<\|im_end\|>\n<\|im_start\|>assistant\n$/);

    const raw = new Conversation(tok, undefined, promptFormat(tok, 'raw'));
    assert.equal(raw.templated, false);
    assert.match(around(raw, decode), /DOC\n\nQ\?$/);
    assert.doesNotMatch(around(raw, decode), /im_start/);

    const llama = around(new Conversation(tok, 'Be brief.', promptFormat(tok, { template: 'llama3' })), decode);
    assert.match(llama, /<\|start_header_id\|>system<\|end_header_id\|>\n\nBe brief\.<\|eot_id\|><\|start_header_id\|>user<\|end_header_id\|>\n\nDOC\n\nQ\?<\|eot_id\|><\|start_header_id\|>assistant<\|end_header_id\|>\n\n$/);

    const file = join(dir, 'mine.jinja');
    writeFileSync(file, '{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant] {% endif %}');
    assert.equal(around(new Conversation(tok, undefined, promptFormat(tok, { template: file })), decode).replace(/^<s>|^\S*?(?=\[)/, ''), '[user] DOC\n\nQ?\n[assistant] ');
  });

  it('a template that is neither a name nor a readable file, or does not parse, is a usage error naming it', async () => {
    const tok = await loadTokenizer(fixtureModel('tiny'));
    assert.throws(() => promptFormat(tok, { template: join(dir, 'missing.jinja') }), (e) => isCtxError(e) && e.kind === 'usage' && /missing\.jinja: not a template name \(chatml, llama3, gemma\) and not a readable file \(no such file or directory\)/.test(e.message));
    const broken = join(dir, 'broken.jinja');
    writeFileSync(broken, '{% for m in messages %}');
    assert.throws(() => promptFormat(tok, { template: broken }), (e) => isCtxError(e) && e.kind === 'usage' && e.message.includes('broken.jinja'));
  });

  it('a model without a chat template is told about in the plan, before reading', async () => {
    const events: RunEvent[] = [];
    const doc = await openDocument({ inputs: [docPath], model: demoModel, backend: 'reference', cache: false, maxTokens: 2, onEvent: (e) => events.push(e) });
    await doc.close();
    const plan = events.find((e) => e.type === 'plan') as Extract<RunEvent, { type: 'plan' }>;
    assert.ok(events.indexOf(plan) < events.findIndex((e) => e.type === 'progress'));
    assert.ok(plan.notes.some((n) => /^the model has no chat template, so its prompt is plain text: the document, a blank line, the question; --template NAME\|FILE/.test(n)), plan.notes.join('\n'));
    const tok = await loadTokenizer(fixtureModel('tiny'));
    assert.deepEqual(formatNote(promptFormat(tok)), [], "a model's own template needs no note");
    assert.deepEqual(formatNote(promptFormat(tok, 'raw')), ['prompt: plain text (--raw): the document, a blank line, the question']);
  });

  it('an empty answer is never silent: a warning event says why', async () => {
    const tok = await loadTokenizer(fixtureModel('tiny'));
    const result = { answer: '  ', reason: 'eos' as const, generatedTokens: 0, promptTokens: 5, firstTokenSeconds: NaN, seconds: 0.1 };
    assert.equal(emptyAnswerWarning(result, promptFormat(tok, 'raw')), 'the answer is empty: the model ended its answer at once after 0 tokens; it read a plain-text prompt (no chat template): a chat model, or --template NAME|FILE, may answer');
    assert.equal(emptyAnswerWarning({ ...result, answer: 'x' }, promptFormat(tok)), null);

    // A stop text that the answer starts with ends it at once.
    const events: RunEvent[] = [];
    const options = { inputs: [docPath], model: fixtureModel('tiny'), backend: 'reference' as const, strategy: { strategy: 'select' as const }, cache: false as const, maxTokens: 4 };
    const first = await openDocument(options);
    const text = (await first.ask('What is the answer?')).answer;
    await first.close();
    const doc = await openDocument({ ...options, onEvent: (e) => events.push(e) });
    const empty = await doc.ask('What is the answer?', { stopStrings: [text[0]!] });
    await doc.close();
    assert.equal(empty.answer, '');
    const warnings = events.filter((e): e is Extract<RunEvent, { type: 'warning' }> => e.type === 'warning').map((e) => e.message);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /^the answer is empty: a stop text ended the answer at once after \d+ tokens?$/);
    assert.ok(events.findIndex((e) => e.type === 'warning') > events.findIndex((e) => e.type === 'answer'));
  });
});
