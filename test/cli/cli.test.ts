// The CLI as a user runs it (node bin/ctx.js): exit codes, one-line errors, help and version, stdin,
// settings from env and config file, signals, and `ctx inspect` output in text and JSON.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EXIT } from '../../src/errors.js';
import { inputFixtures, isRoot, REPO_ROOT, scratchDir, sharedPath } from '../helpers/fixtures.js';
import { BIN, cleanEnv, ctx } from './spawn-ctx.js';

const fx = inputFixtures();
const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** Exactly one line on stderr, "ctx: <message>", and the exit code. */
function assertOneLineError(r: ReturnType<typeof ctx>, code: number, message: string | RegExp): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.equal(lines.length, 1, `one line on stderr, got:\n${r.stderr}`);
  if (typeof message === 'string') assert.equal(lines[0], message);
  else assert.match(lines[0]!, message);
  assert.ok(!/\n\s+at /.test(r.stderr), 'no stack trace');
}

describe('version, help, usage errors', () => {
  it('-V and --version print the package version', () => {
    for (const flag of ['-V', '--version']) {
      const r = ctx([flag]);
      assert.equal(r.code, 0);
      assert.equal(r.stdout.trim(), version);
    }
  });

  it('--help lists inspect, the settings precedence and the exit codes', () => {
    const r = ctx(['--help']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /inspect \[options\] \[inputs\.\.\.\]/);
    assert.match(r.stdout, /CTX_MAX_FILE_BYTES/);
    assert.match(r.stdout, /Exit codes:\n\s+0  success/);
    assert.match(r.stdout, /130  interrupted/);
  });

  it('no command prints help on stderr and exits with the usage code', () => {
    const r = ctx([]);
    assert.equal(r.code, EXIT.usage);
    assert.match(r.stderr, /Usage: ctx/);
  });

  it('an unknown option or command is one usage line', () => {
    assertOneLineError(ctx(['inspect', '--bogus']), EXIT.usage, "ctx: unknown option '--bogus' (see ctx inspect --help)");
    assertOneLineError(ctx(['inspekt']), EXIT.usage, /^ctx: unknown command 'inspekt' \(Did you mean inspect\?\)/);
  });

  it('a bad option value is a usage error', () => {
    assertOneLineError(ctx(['inspect', '--max-file-bytes', 'lots', 'x']), EXIT.usage, /--max-file-bytes <size>' argument 'lots' is invalid\. not a size/);
    assertOneLineError(ctx(['inspect', '--strategy', 'magic', 'x']), EXIT.usage, /Allowed choices are auto, beacon, select, stream, full/);
  });
});

describe('small things a new user sees', () => {
  it('--json: an error is also one JSON object on stdout (and the one line on stderr)', () => {
    for (const args of [['--json', 'inspect', 'missing.txt'], ['inspect', 'missing.txt', '--json'], ['--json', 'inspect', '--bogus']]) {
      const r = ctx(args);
      const error = (JSON.parse(r.stdout) as { error: { kind: string; code: number; message: string } }).error;
      assert.equal(r.code, error.code, args.join(' '));
      assert.equal(r.stderr, `ctx: ${error.message}\n`);
    }
    assert.deepEqual(JSON.parse(ctx(['--json', 'inspect', 'missing.txt']).stdout), { error: { kind: 'input', code: EXIT.input, message: 'missing.txt: no such file or directory' } });
    assert.equal(JSON.parse(ctx(['--json', 'inspect', '--bogus']).stdout).error.kind, 'usage');
  });

  it('output piped into a reader that leaves early (| head -1) ends quietly with exit 0, never a stack trace', () => {
    for (const cmd of ['models list', 'models info activation-beacon-llama2-7b-chat', '--help']) {
      const r = spawnSync('bash', ['-c', `set -o pipefail; "${process.execPath}" "${BIN}" ${cmd} | head -1`], { env: cleanEnv(), encoding: 'utf8' });
      assert.ok(!/EPIPE|\n\s+at |Error/.test(r.stderr), `${cmd}: ${r.stderr}`);
      assert.equal(r.status, 0, cmd);
      assert.equal(r.stdout.split('\n').filter(Boolean).length, 1, cmd);
    }
  });

  it('a usage error in a subcommand points at that subcommand\'s --help', () => {
    assertOneLineError(ctx(['cache', 'rm']), EXIT.usage, "ctx: missing required argument 'ids' (see ctx cache rm --help)");
  });

  it('models list shows PARAMS and WINDOW of the built-in model, as models info does', () => {
    const list = ctx(['models', 'list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^needle-demo +1\.2M +1,024 +beacon /m);
    assert.match(ctx(['models', 'info', 'needle-demo']).stdout, /^parameters: +1\.2M /m);
  });
});

describe('input errors: one line naming the file, documented exit code', () => {
  const t = (f: string) => fx.path(`text/${f}`);

  it('nonexistent path → 3', () => {
    assertOneLineError(ctx(['inspect', 'no-such-file.txt']), EXIT.input, 'ctx: no-such-file.txt: no such file or directory');
  });

  it('empty file → 4, binary → 3, invalid UTF-8 → 3 with the byte offset', () => {
    assertOneLineError(ctx(['inspect', t('empty.txt')]), EXIT.emptyInput, `ctx: ${t('empty.txt')}: is empty`);
    assertOneLineError(ctx(['inspect', t('binary.dat')]), EXIT.input, `ctx: ${t('binary.dat')}: is binary (contains NUL bytes)`);
    assertOneLineError(ctx(['inspect', t('latin1.txt')]), EXIT.input, /latin1\.txt: is not valid UTF-8: invalid byte sequence at byte 3;/);
  });

  it('a folder where everything is ignored → 4 with the breakdown', () => {
    assertOneLineError(ctx(['inspect', fx.path('all-ignored')]), EXIT.emptyInput, /all-ignored: nothing to read: all 5 files and folders were ignored or skipped \(3 ignored: /);
  });

  it('corrupt PDF, PDF without text, encrypted PDF → 3', { skip: fx.skipPdf }, () => {
    const p = (f: string) => fx.path(`pdf/${f}`);
    assertOneLineError(ctx(['inspect', p('corrupt.pdf')]), EXIT.input, `ctx: ${p('corrupt.pdf')}: is not a valid PDF (Invalid PDF structure)`);
    assertOneLineError(ctx(['inspect', p('scanned.pdf')]), EXIT.input, /scanned\.pdf: has no text layer \(scanned images\?\); run OCR first/);
    assertOneLineError(ctx(['inspect', p('encrypted.pdf')]), EXIT.input, /encrypted\.pdf: is an encrypted PDF/);
  });

  it('--verbose adds the stack trace to an error', () => {
    const r = ctx(['--verbose', 'inspect', 'no-such-file.txt']);
    assert.equal(r.code, EXIT.input);
    assert.match(r.stderr, /^ctx: no-such-file\.txt: no such file or directory\nCtxError: .*\n\s+at /);
  });

  describe('permission denied', () => {
    // Root reads any file, so as root ctx is run as "nobody" through setpriv (util-linux).
    const asNobody = isRoot ? ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'] : undefined;
    const setprivMissing = isRoot && spawnSync('setpriv', ['--version']).error ? 'running as root and setpriv is missing, so permissions cannot be tested' : false;

    function lockedFixtures() {
      const dir = scratchDir('perm');
      chmodSync(dir, 0o755);
      const file = join(dir, 'locked.txt');
      writeFileSync(file, 'secret\n');
      chmodSync(file, 0o000);
      const folder = join(dir, 'locked-dir');
      mkdirSync(folder);
      writeFileSync(join(folder, 'a.txt'), 'a\n');
      chmodSync(folder, 0o000);
      const tree = join(dir, 'tree');
      mkdirSync(join(tree, 'closed'), { recursive: true });
      writeFileSync(join(tree, 'open.txt'), 'open\n');
      writeFileSync(join(tree, 'closed', 'b.txt'), 'b\n');
      chmodSync(join(tree, 'closed'), 0o000);
      return { file, folder, tree };
    }

    it('an unreadable file or folder is an input error; inside a walk it is skipped', { skip: setprivMissing }, () => {
      const { file, folder, tree } = lockedFixtures();
      assertOneLineError(ctx(['inspect', file], { prefix: asNobody }), EXIT.input, `ctx: ${file}: permission denied`);
      assertOneLineError(ctx(['inspect', folder], { prefix: asNobody }), EXIT.input, `ctx: ${folder}: permission denied`);
      const r = ctx(['--json', 'inspect', tree], { prefix: asNobody });
      assert.equal(r.code, 0, r.stderr);
      const report = JSON.parse(r.stdout);
      assert.deepEqual(report.sources.map((s: { path: string }) => s.path), [join(tree, 'open.txt')]);
      assert.deepEqual(report.skipped, [{ path: `${join(tree, 'closed')}/`, reason: 'cannot be read: permission denied' }]);
    });
  });
});

describe('inspect', () => {
  it('prints sources, skipped files with reasons, and a labelled estimate without a model', () => {
    const r = ctx(['inspect', fx.path('repo')]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Sources \(13\)\n  .*repo\/README\.md\s+text\s+28 B\s+~\d+ tokens\n/);
    assert.match(r.stdout, /\nSkipped \(20\)\n/);
    assert.match(r.stdout, /repo\/node_modules\/\s+ignored by default \(node_modules\/\)\n/);
    assert.match(r.stdout, /repo\/big\.txt\s+is larger than the size cap/);
    assert.match(r.stdout, /\nTotal: ~[\d,]+ tokens \(estimate: 4 characters per token; -m <model> counts exactly\)\n/);
    assert.match(r.stdout, /Plan: needs a model/);
    assert.equal(r.stderr, '');
  });

  it('--json gives the same as one object', () => {
    const r = ctx(['inspect', '--json', fx.path('repo')]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.sources.length, 13);
    assert.deepEqual(report.sources[0], { path: fx.path('repo/README.md'), kind: 'text', bytes: 28, encoding: 'utf-8', tokens: report.sources[0].tokens });
    assert.equal(report.skipped.length, 20);
    assert.equal(report.tokens.method, 'estimate');
    assert.equal(report.tokens.charsPerToken, 4);
    const sum = report.sources.reduce((n: number, s: { tokens: number }) => n + s.tokens, 0);
    assert.equal(report.tokens.total, sum);
    assert.equal(report.model, null);
    assert.equal(report.plan, null);
  });

  it('reads piped stdin: with no inputs, and with "-" among inputs (first when "-" is first)', () => {
    const alone = JSON.parse(ctx(['--json', 'inspect'], { input: 'piped text\n' }).stdout);
    // ~5 tokens: "piped text" with the [line 1] marker ask adds (4 characters per token)
    assert.deepEqual(alone.sources, [{ path: '-', kind: 'stdin', bytes: 11, encoding: 'utf-8', tokens: 5 }]);
    const both = JSON.parse(ctx(['--json', 'inspect', '-', fx.path('repo/README.md')], { input: 'log\n' }).stdout);
    assert.deepEqual(both.sources.map((s: { path: string }) => s.path), ['-', fx.path('repo/README.md')]);
  });

  it('with nothing piped and no inputs it says stdin is empty', () => {
    assertOneLineError(ctx(['inspect']), EXIT.emptyInput, 'ctx: stdin: is empty');
  });

  it('stdin is not read when files are named: `while read f; do ctx … "$f"; done < list` processes every file', () => {
    const list = join(scratchDir('list'), 'list.txt');
    writeFileSync(list, `${fx.path('repo/README.md')}\n${fx.path('text/utf8.txt')}\n`);
    const loop = `while read f; do "${process.execPath}" "${BIN}" --json inspect "$f" || exit 1; done < "${list}"`;
    const r = spawnSync('sh', ['-c', loop], { env: cleanEnv(), encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const reports = r.stdout.split(/\n(?=\{)/).map((t) => JSON.parse(t) as { sources: Array<{ path: string }> });
    assert.deepEqual(reports.map((x) => x.sources.map((s) => s.path)), [[fx.path('repo/README.md')], [fx.path('text/utf8.txt')]]);
  });

  it('a named pipe from process substitution is read like a file', { skip: spawnSync('bash', ['--version']).error ? 'bash is not installed' : false }, () => {
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${BIN}" --json inspect <(printf 'from a pipe\\n')`], { env: cleanEnv(), encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const [source] = JSON.parse(r.stdout).sources;
    assert.match(source.path, /^\/dev\/fd\/\d+$/);
    assert.equal(source.bytes, 12);
  });

  it('a PDF: pages per source', { skip: fx.skipPdf }, () => {
    const r = ctx(['inspect', '--json', fx.path('pdf/three-pages.pdf')]);
    assert.equal(r.code, 0, r.stderr);
    const s = JSON.parse(r.stdout).sources[0];
    assert.equal(s.kind, 'pdf');
    assert.equal(s.pages, 3);
  });

  const debian = sharedPath('data/pdf/debian-reference.en.pdf');
  it('a real 261-page PDF', { skip: debian.skip }, () => {
    const r = ctx(['inspect', debian.path]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /debian-reference\.en\.pdf\s+pdf\s+261 p\.\s+1\.2 MiB\s+~[\d,]+ tokens/);
  });

  const aidreams = sharedPath('models/aidreams260K-hf');
  it('with a model: exact token counts, the native window and the KV plan', { skip: aidreams.skip }, () => {
    const r = ctx(['inspect', '--json', '-m', aidreams.path, fx.path('repo/README.md'), fx.path('repo/zeta.md')]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.tokens.method, 'tokenizer');
    assert.equal(report.tokens.charsPerToken, undefined);
    assert.equal(report.model.nativeWindow, 128);
    assert.equal(report.plan.nativeWindow, 128);
    assert.equal(report.plan.documentTokens, report.tokens.total);
    assert.ok(report.plan.kvRows > 0 && report.plan.kvBytes > 0);
    // KV bytes as the cpu backend stores them: f16 by default (2 bytes a value), f32 with --kv-dtype f32.
    const c = JSON.parse(readFileSync(join(aidreams.path, 'config.json'), 'utf8'));
    const valuesPerRow = 2 * c.num_hidden_layers * c.num_key_value_heads * c.head_dim;
    assert.equal(report.plan.kvDtype, 'f16');
    assert.equal(report.plan.kvBytes, report.plan.kvRows * valuesPerRow * 2);
    const f32 = JSON.parse(ctx(['inspect', '--json', '--kv-dtype', 'f32', '-m', aidreams.path, fx.path('repo/README.md'), fx.path('repo/zeta.md')]).stdout);
    assert.equal(f32.plan.kvBytes, 2 * report.plan.kvBytes);
    const text = ctx(['inspect', '-m', aidreams.path, fx.path('repo/README.md')]).stdout;
    assert.match(text, /Total: [\d,]+ tokens \(aidreams260K-hf tokenizer\)/);
    assert.match(text, /native window\s+128 tokens/);
    assert.match(text, /KV rows held\s+[\d,]+/);
    assert.match(text, /KV memory\s+[\d.]+ [KMG]iB \(f16, as the cpu backend stores it\)/);
  });

  it('a plan that does not fit prints the plan and exits 7', { skip: aidreams.skip }, () => {
    const r = ctx(['inspect', '-m', aidreams.path, '--strategy', 'full', fx.path('repo/big.txt')]);
    assert.equal(r.code, EXIT.doesNotFit);
    assert.match(r.stdout, /fits\s+no: the run needs [\d,]+ tokens .*Use --strategy select/);
  });

  it('a model path that does not exist, or an unknown name, is a model error (before reading inputs)', () => {
    assertOneLineError(ctx(['inspect', '-m', 'no/such/model', 'no-such-input']), EXIT.model, 'ctx: no/such/model: model folder does not exist');
    assertOneLineError(ctx(['inspect', '-m', 'no-such-model', 'no-such-input']), EXIT.model, /^ctx: unknown model "no-such-model": .*\(ctx models list\)$/);
  });
});

describe('settings: flag > environment > config file > default', () => {
  const big = fx.path('repo/big.txt'); // 1.5 MB: skipped under the default 1 MiB cap
  function readsBig(args: string[], env: Record<string, string> = {}): boolean {
    const r = ctx(['--json', 'inspect', ...args, fx.path('repo')], { env });
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).sources.some((s: { path: string }) => s.path === big);
  }
  function configHome(config: unknown): string {
    const home = scratchDir('config');
    mkdirSync(join(home, 'ctx'));
    writeFileSync(join(home, 'ctx', 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
    return home;
  }

  it('default: the 1 MiB cap', () => {
    assert.equal(readsBig([]), false);
  });

  it('the config file beats the default', () => {
    assert.equal(readsBig([], { XDG_CONFIG_HOME: configHome({ maxFileBytes: '2M' }) }), true);
    assert.equal(readsBig([], { XDG_CONFIG_HOME: configHome({ inspect: { maxFileBytes: 2_000_000 } }) }), true);
  });

  it('a command section beats the top level of the config file', () => {
    const home = configHome({ maxFileBytes: '2M', inspect: { maxFileBytes: '1K' } });
    assert.equal(readsBig([], { XDG_CONFIG_HOME: home }), false);
  });

  it('the environment beats the config file', () => {
    const home = configHome({ maxFileBytes: '2M' });
    assert.equal(readsBig([], { XDG_CONFIG_HOME: home, CTX_MAX_FILE_BYTES: '1K' }), false);
    assert.equal(readsBig([], { CTX_MAX_FILE_BYTES: '2M' }), true);
  });

  it('a flag beats the environment and the config file', () => {
    const home = configHome({ maxFileBytes: '1K' });
    assert.equal(readsBig(['--max-file-bytes', '2M'], { XDG_CONFIG_HOME: home, CTX_MAX_FILE_BYTES: '1K' }), true);
  });

  it('boolean settings: CTX_JSON=1 and {"json": true} give JSON; CTX_JSON=0 overrides the file', () => {
    const readme = fx.path('repo/README.md');
    assert.doesNotThrow(() => JSON.parse(ctx(['inspect', readme], { env: { CTX_JSON: '1' } }).stdout));
    const home = configHome({ json: true });
    assert.doesNotThrow(() => JSON.parse(ctx(['inspect', readme], { env: { XDG_CONFIG_HOME: home } }).stdout));
    assert.match(ctx(['inspect', readme], { env: { XDG_CONFIG_HOME: home, CTX_JSON: '0' } }).stdout, /^Sources \(1\)/);
  });

  it('an invalid config file is a usage error naming it', () => {
    const bad = configHome('{"maxFileBytes": ');
    assertOneLineError(ctx(['inspect', 'x'], { env: { XDG_CONFIG_HOME: bad } }), EXIT.usage, new RegExp(`^ctx: ${join(bad, 'ctx', 'config.json')}: config file is not valid JSON \\(`));
    const unknown = configHome({ maxFileByte: 1 });
    assertOneLineError(ctx(['inspect', 'x'], { env: { XDG_CONFIG_HOME: unknown } }), EXIT.usage, /config\.json: config file: unknown setting "maxFileByte"$/);
    const wrongType = configHome({ json: 'yes' });
    assertOneLineError(ctx(['inspect', 'x'], { env: { XDG_CONFIG_HOME: wrongType } }), EXIT.usage, /config file: setting "json": must be true or false$/);
  });

  it('an invalid environment value is a usage error naming the variable', () => {
    assertOneLineError(ctx(['inspect', 'x'], { env: { CTX_MAX_FILE_BYTES: 'huge' } }), EXIT.usage, 'ctx: CTX_MAX_FILE_BYTES=huge: not a size (use e.g. 1048576, 512K or 4M)');
    assertOneLineError(ctx(['inspect', 'x'], { env: { CTX_VERBOSE: 'maybe' } }), EXIT.usage, /^ctx: CTX_VERBOSE=maybe: expected 1 or 0/);
  });
});

describe('signals', () => {
  it('Ctrl-C while reading stdin exits 130 with one line', async () => {
    const child = spawn(process.execPath, [BIN, 'inspect', '-'], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdin.write('some text, and the pipe stays open\n');
    // Give ctx time to start and install its handlers (it then waits on stdin forever).
    await new Promise((r) => setTimeout(r, 2500));
    child.kill('SIGINT');
    const [code] = (await new Promise((resolve) => child.on('exit', (...a) => resolve(a)))) as unknown as [number | null];
    assert.equal(code, EXIT.interrupted);
    assert.equal(stderr, 'ctx: interrupted\n');
  });

  it('a pipe that never sends anything ends after --stdin-wait with one line, exit 3; it does not hang', async () => {
    const child = spawn(process.execPath, [BIN, 'inspect', '--stdin-wait', '1'], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const hung = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code, signal] = (await new Promise((resolve) => child.on('exit', (...a) => resolve(a)))) as unknown as [number | null, string | null];
    clearTimeout(hung);
    child.stdin.destroy();
    assert.equal(signal, null, 'ctx ended by itself');
    assert.equal(code, EXIT.input);
    assert.equal(stderr, 'ctx: stdin: nothing arrived in 1 s: pipe the document into ctx or name files (--stdin-wait sets how long to wait, 0 = forever)\n');
  });
});
