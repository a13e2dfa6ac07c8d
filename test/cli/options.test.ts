// The generic settings mechanism on a small program: names, precedence, sections, types, errors.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Command, Option } from 'commander';
import { CtxError } from '../../src/errors.js';
import { applySettings, byteSizeArg, configFilePath, configKey, envVarName, loadConfig, type ConfigFile } from '../../src/cli/options.js';
import { scratchDir } from '../helpers/fixtures.js';

/** A program shaped like ctx's: a global flag, and commands with a size, a negated flag, choices. */
function program(): Command {
  const root = new Command('ctx').exitOverride().option('--json', 'json').option('--verbose', 'verbose');
  const inspect = new Command('inspect')
    .exitOverride()
    .argument('[inputs...]')
    .addOption(new Option('--max-file-bytes <size>').argParser(byteSizeArg).default(1024))
    .addOption(new Option('--strategy <name>').choices(['auto', 'full']).default('auto'))
    .addOption(new Option('--no-stream'))
    .action(() => {});
  const models = new Command('models').exitOverride();
  models.addCommand(new Command('pull').exitOverride().addOption(new Option('--revision <rev>').default('main')).action(() => {}));
  root.addCommand(inspect).addCommand(models);
  return root;
}

/** Applies config + env, parses argv, returns the options the inspect command sees. */
function settle(argv: string[], env: Record<string, string> = {}, values?: Record<string, unknown>) {
  const root = program();
  const config: ConfigFile | undefined = values ? { path: '/cfg/config.json', values } : undefined;
  applySettings(root, env, config);
  root.parse(['node', 'ctx', ...argv]);
  const inspect = root.commands.find((c) => c.name() === 'inspect')!;
  return { opts: inspect.optsWithGlobals(), source: (k: string) => inspect.getOptionValueSource(k) ?? root.getOptionValueSource(k), root };
}

describe('names', () => {
  it('config keys are the long flag in camelCase; env vars are CTX_ + UPPER_SNAKE', () => {
    const o = new Option('--max-file-bytes <size>');
    assert.equal(configKey(o), 'maxFileBytes');
    assert.equal(envVarName(o), 'CTX_MAX_FILE_BYTES');
    assert.equal(configKey(new Option('--no-stream')), 'noStream');
    assert.equal(envVarName(new Option('--no-stream')), 'CTX_NO_STREAM');
    assert.equal(envVarName(new Option('-m, --model <name>')), 'CTX_MODEL');
  });
});

describe('precedence: flag > environment > config file > default', () => {
  it('default', () => {
    const { opts, source } = settle(['inspect']);
    assert.equal(opts.maxFileBytes, 1024);
    assert.equal(source('maxFileBytes'), 'default');
  });

  it('config beats default; values go through the option\'s parser', () => {
    const { opts, source } = settle(['inspect'], {}, { maxFileBytes: '2K' });
    assert.equal(opts.maxFileBytes, 2048);
    assert.equal(source('maxFileBytes'), 'config');
  });

  it('env beats config', () => {
    const { opts, source } = settle(['inspect'], { CTX_MAX_FILE_BYTES: '3K' }, { maxFileBytes: '2K' });
    assert.equal(opts.maxFileBytes, 3072);
    assert.equal(source('maxFileBytes'), 'env');
  });

  it('a flag beats env and config', () => {
    const { opts, source } = settle(['inspect', '--max-file-bytes', '4K'], { CTX_MAX_FILE_BYTES: '3K' }, { maxFileBytes: '2K' });
    assert.equal(opts.maxFileBytes, 4096);
    assert.equal(source('maxFileBytes'), 'cli');
  });

  it('global options of the program follow the same rules', () => {
    assert.equal(settle(['inspect'], {}, { json: true }).opts.json, true);
    assert.equal(settle(['inspect'], { CTX_JSON: 'false' }, { json: true }).opts.json, false);
    assert.equal(settle(['inspect', '--json'], { CTX_JSON: '0' }).opts.json, true);
  });

  it('negated flags: {"noStream": true} and CTX_NO_STREAM=1 turn streaming off', () => {
    assert.equal(settle(['inspect']).opts.stream, true);
    assert.equal(settle(['inspect'], {}, { noStream: true }).opts.stream, false);
    assert.equal(settle(['inspect'], { CTX_NO_STREAM: 'yes' }).opts.stream, false);
    assert.equal(settle(['inspect'], { CTX_NO_STREAM: '0' }, { noStream: true }).opts.stream, true);
  });
});

describe('config file sections', () => {
  it('a command section beats the top level, only for that command', () => {
    const { opts } = settle(['inspect'], {}, { strategy: 'full', inspect: { strategy: 'auto' } });
    assert.equal(opts.strategy, 'auto');
  });

  it('sections nest for subcommands and inherit the levels above', () => {
    const root = program();
    applySettings(root, {}, { path: '/cfg', values: { revision: 'v1', models: { pull: { revision: 'v2' } } } });
    const pull = root.commands.find((c) => c.name() === 'models')!.commands[0]!;
    assert.equal(pull.getOptionValue('revision'), 'v2');
    const root2 = program();
    applySettings(root2, {}, { path: '/cfg', values: { revision: 'v1' } });
    assert.equal(root2.commands.find((c) => c.name() === 'models')!.commands[0]!.getOptionValue('revision'), 'v1');
  });
});

describe('bad settings are usage errors naming where they came from', () => {
  const usage = (fn: () => unknown, message: RegExp) =>
    assert.throws(fn, (e: unknown) => e instanceof CtxError && e.kind === 'usage' && message.test(e.message));

  it('unknown keys, unknown sections, wrong types, values the parser refuses', () => {
    usage(() => settle(['inspect'], {}, { maxFileByte: 1 }), /^\/cfg\/config\.json: config file: unknown setting "maxFileByte"$/);
    usage(() => settle(['inspect'], {}, { inspekt: { json: true } }), /"inspekt" is not a command/);
    usage(() => settle(['inspect'], {}, { inspect: { revision: 'x' } }), /unknown setting "revision" in section "inspect"/);
    usage(() => settle(['inspect'], {}, { json: 'yes' }), /setting "json": must be true or false/);
    usage(() => settle(['inspect'], {}, { strategy: 'magic' }), /setting "strategy": .*Allowed choices are auto, full/);
    usage(() => settle(['inspect'], {}, { maxFileBytes: [1] }), /setting "maxFileBytes": must be a string or a number/);
  });

  it('environment values', () => {
    usage(() => settle(['inspect'], { CTX_VERBOSE: 'maybe' }), /^CTX_VERBOSE=maybe: expected 1 or 0/);
    usage(() => settle(['inspect'], { CTX_MAX_FILE_BYTES: '-5' }), /^CTX_MAX_FILE_BYTES=-5: not a size/);
  });
});

describe('the config file', () => {
  it('lives in $CTX_CONFIG_DIR, else $XDG_CONFIG_HOME/ctx, else ~/.config/ctx (relative XDG paths ignored)', () => {
    assert.equal(configFilePath({ CTX_CONFIG_DIR: '/etc/ctx' }), '/etc/ctx/config.json');
    assert.equal(configFilePath({ XDG_CONFIG_HOME: '/x' }), '/x/ctx/config.json');
    assert.equal(configFilePath({ XDG_CONFIG_HOME: 'relative' }), join(homedir(), '.config', 'ctx', 'config.json'));
    assert.equal(configFilePath({}), join(homedir(), '.config', 'ctx', 'config.json'));
  });

  it('a missing file is no settings; invalid JSON or a non-object is a usage error naming the file', () => {
    const home = scratchDir('cfg');
    assert.equal(loadConfig({ XDG_CONFIG_HOME: home }), undefined);
    mkdirSync(join(home, 'ctx'));
    const file = join(home, 'ctx', 'config.json');
    writeFileSync(file, '{"model": "x"}');
    assert.deepEqual(loadConfig({ XDG_CONFIG_HOME: home }), { path: file, values: { model: 'x' } });
    writeFileSync(file, '{ nope');
    assert.throws(() => loadConfig({ XDG_CONFIG_HOME: home }), (e: unknown) => e instanceof CtxError && e.kind === 'usage' && e.message.startsWith(`${file}: config file is not valid JSON`));
    writeFileSync(file, '[1, 2]');
    assert.throws(() => loadConfig({ XDG_CONFIG_HOME: home }), /must hold a JSON object/);
  });
});
