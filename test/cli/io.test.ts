// Argument conventions (stdin, question last), failure reporting, and run() in-process.
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { CommanderError } from 'commander';
import { describeFailure, run } from '../../src/cli/main.js';
import { documentInputs, formatTable, inputsAndQuestion } from '../../src/cli/io.js';
import { CtxError, EXIT } from '../../src/errors.js';
import { inputFixtures } from '../helpers/fixtures.js';

const fx = inputFixtures();

describe('documentInputs: when stdin is read', () => {
  it('"-" is stdin where it stands', () => {
    assert.deepEqual(documentInputs(['a', '-', 'b'], { stdinKind: 'tty' }), { specs: ['a', '-', 'b'] });
  });

  it('no inputs: stdin unless it is a terminal', () => {
    assert.deepEqual(documentInputs([], { stdinKind: 'pipe' }), { specs: ['-'] });
    assert.deepEqual(documentInputs([], { stdinKind: 'other' }), { specs: ['-'] });
    assert.throws(() => documentInputs([], { stdinKind: 'tty' }), (e: unknown) => e instanceof CtxError && e.kind === 'usage');
  });

  it('inputs named: stdin is not read, whatever it is (the rule cat and grep follow)', () => {
    for (const stdinKind of ['pipe', 'file', 'other', 'tty'] as const) assert.deepEqual(documentInputs(['a'], { stdinKind }), { specs: ['a'] });
  });

  it('inputsAndQuestion: the question is last; with no inputs, piped content is the document', () => {
    assert.deepEqual(inputsAndQuestion(['why?'], { stdinKind: 'pipe' }), { specs: ['-'], question: 'why?' });
    assert.deepEqual(inputsAndQuestion(['r.pdf', 'what changed?'], { stdinKind: 'tty' }), { specs: ['r.pdf'], question: 'what changed?' });
    assert.throws(() => inputsAndQuestion([], { stdinKind: 'pipe' }), /no question/);
  });
});

describe('describeFailure', () => {
  it('a CtxError is one line with its exit code; --verbose adds the stack', () => {
    const e = new CtxError('input', 'is binary', { path: 'a.bin' });
    assert.deepEqual(describeFailure(e, false), { code: EXIT.input, text: 'ctx: a.bin: is binary\n' });
    const verbose = describeFailure(e, true);
    assert.equal(verbose.code, EXIT.input);
    assert.match(verbose.text, /^ctx: a\.bin: is binary\nCtxError: a\.bin: is binary\n\s+at /);
  });

  it('anything else is an internal error asking for --verbose, exit 1', () => {
    assert.deepEqual(describeFailure(new TypeError('x is undefined'), false), {
      code: EXIT.internal,
      text: 'ctx: internal error: x is undefined (run with --verbose for the stack trace)\n',
    });
    const verbose = describeFailure(new TypeError('x is undefined', { cause: new Error('root cause') }), true);
    assert.match(verbose.text, /^ctx: internal error: x is undefined\nTypeError: x is undefined\n\s+at [^]*caused by: Error: root cause/);
  });

  it('commander errors: help and version exit 0 silently; parse errors are one usage line', () => {
    assert.deepEqual(describeFailure(new CommanderError(0, 'commander.helpDisplayed', '(outputHelp)'), false), { code: 0, text: '' });
    assert.deepEqual(describeFailure(new CommanderError(0, 'commander.version', '1.0.0'), false), { code: 0, text: '' });
    const unknown = describeFailure(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'\n(Did you mean --y?)"), false);
    assert.deepEqual(unknown, { code: EXIT.usage, text: "ctx: unknown option '--x' (Did you mean --y?) (see ctx --help)\n" });
  });
});

describe('run() in-process', () => {
  function capture() {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (d) => (text += d));
    return { stream, text: () => text };
  }

  it('returns the exit code and writes to the streams it is given', async () => {
    const out = capture();
    const err = capture();
    const code = await run(['node', 'ctx', '--json', 'inspect', '-', fx.path('repo/README.md')], {
      stdout: out.stream,
      stderr: err.stream,
      stdin: Readable.from(['from stdin\n']),
      stdinKind: 'other',
      env: {},
    });
    assert.equal(code, 0, err.text());
    const report = JSON.parse(out.text());
    assert.deepEqual(report.sources.map((s: { path: string }) => s.path), ['-', fx.path('repo/README.md')]);
    assert.equal(err.text(), '');
  });

  it('an error is one line on the given stderr', async () => {
    const err = capture();
    const code = await run(['node', 'ctx', 'inspect', 'missing.txt'], { stdout: capture().stream, stderr: err.stream, stdinKind: 'tty', env: {} });
    assert.equal(code, EXIT.input);
    assert.equal(err.text(), 'ctx: missing.txt: no such file or directory\n');
  });

  it('a forgotten question: the last argument is an input, so ctx says so (exit 2), on a terminal or piped', async () => {
    for (const stdinKind of ['tty', 'pipe'] as const) {
      const err = capture();
      const code = await run(['node', 'ctx', 'ask', fx.path('repo/README.md'), '-m', 'needle-demo'], { stdout: capture().stream, stderr: err.stream, stdin: Readable.from([]), stdinKind, env: {} });
      assert.equal(code, EXIT.usage, stdinKind);
      assert.equal(err.text(), 'ctx: no question: ctx ask <inputs…> "question"\n', stdinKind);
    }
    assert.throws(() => inputsAndQuestion([fx.path('repo')], { stdinKind: 'tty' }), /no question/, 'a folder too');
  });

  it('inspect or summarize with nothing named on a terminal prints the command\'s usage (exit 2)', async () => {
    for (const command of ['inspect', 'summarize']) {
      const err = capture();
      const code = await run(['node', 'ctx', command], { stdout: capture().stream, stderr: err.stream, stdinKind: 'tty', env: {} });
      assert.equal(code, EXIT.usage, command);
      assert.match(err.text(), new RegExp(`^Usage: ctx ${command} \\[options\\] \\[inputs\\.\\.\\.\\]`), command);
      assert.doesNotMatch(err.text(), /^ctx: /m, 'no error line about stdin');
    }
  });

  it('leaves no signal handlers behind', async () => {
    const before = process.listenerCount('SIGINT');
    await run(['node', 'ctx', '--version'], { stdout: capture().stream, stderr: capture().stream, stdinKind: 'tty', env: {} });
    assert.equal(process.listenerCount('SIGINT'), before);
  });
});

describe('formatTable', () => {
  it('pads columns, right-aligns numbers, leaves no trailing spaces', () => {
    assert.deepEqual(formatTable([['a', '1'], ['bbb', '22']], [false, true]), ['a     1', 'bbb  22']);
    assert.deepEqual(formatTable([['a', 'x'], ['bbb', 'y']]), ['a    x', 'bbb  y']);
  });
});
