// Issue 21.10: file names and model answers with control characters are shown escaped on a terminal
// (no window-title or screen-clear injection), and kept exact where the output is not a terminal.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { out } from '../../src/cli/io.js';
import { run } from '../../src/cli/main.js';
import { escapeControls } from '../../src/ui/format.js';
import { applyEvent, initialView } from '../../src/ui/ink/run-view.js';
import { PlainRenderer } from '../../src/ui/plain.js';
import { scratchDir } from '../helpers/fixtures.js';

class Sink extends Writable {
  text = '';
  isTTY?: boolean;
  constructor(tty: boolean) {
    super();
    if (tty) this.isTTY = true;
  }
  override _write(chunk: Buffer, _enc: string, done: () => void) {
    this.text += chunk.toString();
    done();
  }
}

/** A window-title change, a screen clear, a bell, a C1 CSI and a carriage return. */
const HOSTILE = 'a\x1b]0;owned\x07b\x1b[2Jc\x9b31md\re';
const ESCAPED = 'a\\x1b]0;owned\\x07b\\x1b[2Jc\\x9b31md\\x0de';
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;

describe('control characters on a terminal', () => {
  it('escapeControls writes them as \\xNN, keeping line breaks and tabs', () => {
    assert.equal(escapeControls(HOSTILE), ESCAPED);
    assert.equal(escapeControls('line\n\tindented\x7f'), 'line\n\tindented\\x7f');
  });

  it('plain output: the answer and a skipped file name are escaped on a terminal, exact on a pipe', () => {
    for (const tty of [true, false]) {
      const stdout = new Sink(tty);
      const stderr = new Sink(tty);
      const r = new PlainRenderer({ stdout, stderr, stderrIsTTY: tty, stdoutIsTTY: tty, quiet: false, stream: true });
      r.event({ type: 'skipped', path: `dir/${HOSTILE}.txt`, reason: 'binary' });
      r.event({ type: 'token', text: HOSTILE });
      r.event({ type: 'answer', answer: HOSTILE, reason: 'eos', promptTokens: 1, generatedTokens: 1, firstTokenSeconds: 0, seconds: 0 });
      r.finish();
      if (tty) {
        assert.doesNotMatch(stdout.text + stderr.text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, ''), CONTROL);
        assert.ok(stdout.text.startsWith(ESCAPED));
        assert.match(stderr.text, new RegExp(`skipped dir/${ESCAPED.replace(/[\\[\]]/g, '\\$&')}\\.txt: binary`));
      } else {
        assert.ok(stdout.text.startsWith(HOSTILE), 'a pipe gets the exact text');
        assert.ok(stderr.text.includes(`dir/${HOSTILE}.txt`));
      }
    }
  });

  it('the full-screen view escapes file names in its warning lines', () => {
    const view = applyEvent(initialView(80), { type: 'skipped', path: HOSTILE, reason: 'binary' }, { columns: 80, stream: true, now: 0 });
    const text = view.lines.map((l) => l.text).join('\n');
    assert.doesNotMatch(text, CONTROL);
    assert.ok(text.includes(ESCAPED));
  });

  it('listings (out) are escaped on a terminal only', () => {
    const tty = new Sink(true);
    const pipe = new Sink(false);
    out({ stdout: tty }, HOSTILE);
    out({ stdout: pipe }, HOSTILE);
    assert.equal(tty.text, `${ESCAPED}\n`);
    assert.equal(pipe.text, `${HOSTILE}\n`);
  });

  it('an error naming a hostile file name is one escaped line on a terminal', async () => {
    const missing = join(scratchDir('ctrl'), `${HOSTILE}.txt`);
    const stderr = new Sink(true);
    const code = await run(['node', 'ctx', 'inspect', missing], { stdout: new Sink(false), stderr, stdinKind: 'tty', env: {} });
    assert.equal(code, 3);
    assert.doesNotMatch(stderr.text, CONTROL);
    assert.equal(stderr.text.trim().split('\n').length, 1);
    assert.ok(stderr.text.includes(ESCAPED), stderr.text);
  });

  it('inspect on a terminal lists a hostile file name escaped', async () => {
    const dir = scratchDir('ctrl-inspect');
    writeFileSync(join(dir, `${HOSTILE}.txt`), 'some text\n');
    const stdout = new Sink(true);
    const code = await run(['node', 'ctx', 'inspect', dir], { stdout, stderr: new Sink(false), stdinKind: 'tty', env: { CTX_CACHE_DIR: join(dir, '..', 'cache') } });
    assert.equal(code, 0);
    assert.doesNotMatch(stdout.text, CONTROL);
    assert.ok(stdout.text.includes(ESCAPED), stdout.text);
  });
});
