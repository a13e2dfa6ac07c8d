// `ctx chat` on a real terminal: tmux runs it at 80 columns; keys are sent one per call, ~150 ms
// apart, or text and Enter in one call (tmux delivers a multi-key send as one chunk, as a paste or a
// fast typist would), and the pane is read back. Checks that two
// questions are answered from one read of the document, that Ctrl-C stops an answer and, on an
// empty prompt, ends ctx with 130, and that Ctrl-D ends it with 0. Skipped when tmux is missing.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fixtureModel } from '../../scripts/make-fixture-models.js';
import { scratchDir } from '../helpers/fixtures.js';
import { BIN, ctxHome } from '../ui/run-ctx.js';

const hasTmux = spawnSync('tmux', ['-V']).status === 0;
const socket = `ctx-chat-test-${process.pid}`;
const dir = scratchDir('chat-tmux');
const doc = join(dir, 'doc.txt');
writeFileSync(doc, 'The fox jumps over the lazy dog. The answer is 42.\n'.repeat(8));

const tmux = (...args: string[]) => execFileSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Starts ctx in a detached 80×30 pane; the pane stays open after ctx ends, showing "EXIT <code>". */
function start(session: string, args: string[], cacheDir: string): void {
  // Ink draws its live region only outside CI (is-in-ci), so CI's variables are left out.
  const env = ['env', '-u', 'CI', '-u', 'CONTINUOUS_INTEGRATION', `CTX_CACHE_DIR=${cacheDir}`, `CTX_CONFIG_DIR=${dir}`, 'TERM=xterm-256color'];
  const command = [...env, process.execPath, BIN, ...args].map(shellQuote).join(' ');
  tmux('new-session', '-d', '-s', session, '-x', '80', '-y', '30', `${command}; echo "EXIT $?"; sleep 120`);
}

const pane = (session: string) => tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', session);

async function waitFor(session: string, what: RegExp, timeoutMs = 60_000): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const text = pane(session);
    if (what.test(text)) return text;
    if (Date.now() > until) assert.fail(`timed out waiting for ${what} in the pane:\n${text}`);
    await sleep(150);
  }
}

/** Sends keys one per tmux call, 150 ms apart. */
async function keys(session: string, ...list: string[]): Promise<void> {
  for (const k of list) {
    tmux('send-keys', '-t', session, k);
    await sleep(150);
  }
}

const type = (session: string, text: string) => keys(session, ...[...text].map((c) => (c === ' ' ? 'Space' : c)), 'Enter');
const count = (text: string, re: RegExp) => (text.match(new RegExp(re, 'gm')) ?? []).length;

describe('ctx chat in a terminal (tmux)', { skip: hasTmux ? false : 'tmux is not installed (apt-get install tmux)' }, () => {
  after(() => spawnSync('tmux', ['-L', socket, 'kill-server']));

  it('reads the document once and answers two questions; Ctrl-C on an empty prompt exits 130', async () => {
    const home = ctxHome(join(dir, 'two'));
    const transcript = join(dir, 'chat.md');
    start('two', ['chat', doc, '-m', fixtureModel('tiny-beacon'), '--backend', 'reference', '--max-tokens', '8'], home.cache);
    let text = await waitFor('two', /Enter asks/);
    assert.match(text, /^read \d+ tokens in .* · beacon v3/m);

    await type('two', 'hi?');
    text = await waitFor('two', /❯ hi\?[\s\S]*tokens in [\d.]+ s[\s\S]*Enter asks/);
    // Text and Enter in one send: tmux delivers them as one chunk, which must ask, not pile up.
    tmux('send-keys', '-t', 'two', 'ok', 'Enter');
    text = await waitFor('two', /❯ ok\n[\s\S]*tokens in [\d.]+ s[\s\S]*Enter asks/);
    assert.equal(count(text, /^read \d+ tokens in /), 1, 'the document was read once');
    assert.equal(count(text, /reading /), 0, 'no reading progress left on screen');
    assert.equal(count(text, /^\S* ?\d+ tokens in [\d.]+ s · first after/), 2, 'two answers');
    assert.deepEqual(readdirSync(home.sessions).length, 1, 'one cache entry, saved after the one read');

    await type('two', `/save ${transcript}`);
    await waitFor('two', /saved 2 exchanges to /);
    assert.match(readFileSync(transcript, 'utf8'), /\*\*Q:\*\* hi\?[\s\S]*\*\*Q:\*\* ok/);

    await keys('two', 'C-c');
    text = await waitFor('two', /EXIT \d+/);
    assert.match(text, /ctx: interrupted\s+EXIT 130/);
  });

  it('Ctrl-C stops a long answer and keeps the chat going; Ctrl-D exits 0', async () => {
    const home = ctxHome(join(dir, 'stop'));
    start('stop', ['chat', doc, '-m', fixtureModel('tiny'), '--backend', 'reference', '--strategy', 'select', '--max-tokens', '100000', '--no-cache'], home.cache);
    await waitFor('stop', /Enter asks/);
    await type('stop', 'go');
    await waitFor('stop', /answering · \d+ tokens/);
    await keys('stop', 'C-c');
    let text = await waitFor('stop', /\(answer stopped\) [\d,]+ tokens in[\s\S]*Enter asks/);
    assert.equal(count(text, /EXIT/), 0, 'ctx is still running');
    await keys('stop', 'C-d');
    text = await waitFor('stop', /EXIT \d+/);
    assert.match(text, /EXIT 0/);
    assert.equal(existsSync(home.sessions), false, '--no-cache wrote nothing');
  });

  // Ink's signal-exit re-raises a signal nobody else listens to; ctx must still end with 130.
  it('SIGTERM while the Ink display reads ends ctx with 130 within a second', async () => {
    const home = ctxHome(join(dir, 'term'));
    const long = join(dir, 'long.txt');
    writeFileSync(long, 'The fox jumps over the lazy dog and runs into the forest.\n'.repeat(4000));
    start('term', ['ask', long, 'q?', '-m', fixtureModel('tiny'), '--backend', 'reference', '--strategy', 'select', '--no-cache'], home.cache);
    await waitFor('term', /reading .*\d+%/);
    const pid = Number(execFileSync('pgrep', ['-n', '-f', `${BIN} ask ${long}`], { encoding: 'utf8' }).trim());
    const t0 = Date.now();
    process.kill(pid, 'SIGTERM');
    const text = await waitFor('term', /EXIT \d+/, 5000);
    assert.ok(Date.now() - t0 < 1500, `exited after ${Date.now() - t0} ms`);
    assert.match(text, /ctx: interrupted\s+EXIT 130/);
  });
});
