// The ctx command line: builds the commander program, applies config-file and environment
// settings, runs one command, and turns every outcome into an exit code. bin/ctx.js calls run().
//
// Error contract (DESIGN.md): a CtxError prints one line "ctx: <message>" and exits with its code;
// anything else is a bug: one line asking for --verbose, exit 1; --verbose adds the stack trace.
// Ctrl-C / SIGTERM abort the run's signal and exit 130; a second one exits at once. A long call into a
// model folder's code on this thread (a chat template, a tokenizer regex) hears both through the
// native addon's signal handlers (model/bounded-run.ts).

import { readFileSync } from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { Command, CommanderError } from 'commander';
import { loadAddon } from '../backend/native/addon.js';
import { EXIT, isCtxError, type ExitKind } from '../errors.js';
import { signalHeard, useSignalCatcher } from '../model/bounded-run.js';
import { askCommand } from './ask.js';
import { cacheCommand } from './cache.js';
import { chatCommand } from './chat.js';
import { summarizeCommand } from './summarize.js';
import { inspectCommand } from './inspect.js';
import { modelsCommand } from './models.js';
import { stdinKindOf, type RunContext, type StdinKind } from './io.js';
import { applySettings, configFilePath, loadConfig, parseBoolean } from './options.js';
import { escapeControls, isTerminal } from '../ui/format.js';

/** The commands, one line each: a module exporting a function of the run that returns a commander Command. */
const COMMANDS: Array<(run: RunContext) => Command> = [askCommand, summarizeCommand, chatCommand, inspectCommand, modelsCommand, cacheCommand];

/** What each exit code means; shown by --help and listed in the README. */
export const EXIT_MEANINGS: Record<ExitKind, string> = {
  ok: 'success',
  internal: 'internal error (a bug in ctx; run with --verbose and report it)',
  usage: 'bad flags, arguments, or config file',
  input: 'an input is missing, unreadable, binary, corrupt or undecodable',
  emptyInput: 'nothing to read (empty input, or every file ignored or skipped)',
  model: 'the model folder or its files are missing or invalid',
  download: 'a model download failed',
  doesNotFit: 'the document does not fit the chosen strategy or memory',
  io: 'writing failed (disk full, permissions)',
  interrupted: 'interrupted (Ctrl-C or SIGTERM)',
};

function packageVersion(): string {
  // package.json is two levels up from both src/cli/main.ts and dist/cli/main.js.
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

function helpFooter(): string {
  const codes = (Object.keys(EXIT) as ExitKind[]).map((k) => `  ${String(EXIT[k]).padStart(3)}  ${EXIT_MEANINGS[k]}`);
  return [
    '',
    'Settings: a flag on the command line wins over the environment (CTX_<FLAG>, e.g.',
    `CTX_MAX_FILE_BYTES=4M), which wins over the config file (${configFilePath()}),`,
    'which wins over the built-in default. Config keys are the long flags in camelCase.',
    '',
    'Exit codes:',
    ...codes,
  ].join('\n');
}

export function buildProgram(ctx: RunContext): Command {
  const program = new Command('ctx')
    .description('Ask questions about documents far longer than a model\'s window, locally.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('--json', 'print one JSON object instead of text')
    .option('-q, --quiet', 'print only the result: no progress, no warnings')
    .option('--verbose', 'print details, and the stack trace of an internal error')
    .addHelpText('after', helpFooter());
  for (const make of COMMANDS) program.addCommand(make(ctx));
  configureTree(program, ctx);
  return program;
}

/** A parse error, with the command it belongs to ("ctx cache rm"), so the message can point at its --help. */
export interface CommandParseError extends CommanderError {
  commandPath?: string;
}

/** Commander settings every command needs; addCommand() does not pass them down, so set them on each. */
function configureTree(cmd: Command, ctx: Pick<RunContext, 'stdout' | 'stderr'>, parent = ''): void {
  const path = parent ? `${parent} ${cmd.name()}` : cmd.name();
  // Throw instead of process.exit, naming the command whose arguments were wrong.
  cmd.exitOverride((e: CommandParseError) => {
    e.commandPath ??= path;
    throw e;
  });
  cmd.configureOutput({
    writeOut: (s) => ctx.stdout.write(s),
    writeErr: (s) => ctx.stderr.write(s),
    outputError: () => {}, // run() prints errors itself, as one "ctx: …" line
  });
  cmd.showSuggestionAfterError(true);
  cmd.configureHelp({ showGlobalOptions: true }); // `ctx inspect --help` also lists --json, --quiet, --verbose
  for (const sub of cmd.commands) configureTree(sub, ctx, path);
}

export interface RunIo {
  stdout?: Writable;
  stderr?: Writable;
  stdin?: Readable;
  stdinKind?: StdinKind;
  env?: NodeJS.ProcessEnv;
}

/** Runs one ctx invocation. `argv` is process.argv-shaped (node, script, args…). Resolves to the exit code. */
export async function run(argv: string[], io: RunIo = {}): Promise<number> {
  const env = io.env ?? process.env;
  const controller = new AbortController();
  const ctx: RunContext = {
    stdout: io.stdout ?? process.stdout,
    stderr: io.stderr ?? process.stderr,
    stdin: io.stdin ?? process.stdin,
    stdinKind: io.stdinKind ?? (io.stdin ? 'pipe' : stdinKindOf(0)),
    signal: controller.signal,
    env,
    exitCode: EXIT.ok,
  };
  // Known before parsing, so that a failure while parsing can still honour --verbose.
  let verbose = argv.includes('--verbose') || parseBoolean(env.CTX_VERBOSE ?? '') === true;

  // A signal or a closed stdout ends the run at once with this code; the action is abandoned (it
  // sees the aborted signal and stops).
  let stop!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => (stop = resolve));
  // Listened to with `on`, not `once`: a library that cleans up on signals (Ink's signal-exit)
  // re-raises any signal nobody else listens to, which would end ctx with 143 instead of 130.
  // A second signal while the first is being handled exits at once.
  let signals = 0;
  // With --json, a failure is also one JSON object on stdout, so a script parses stdout either way.
  let program: Command | undefined;
  const wantsJson = () => argv.includes('--json') || program?.opts().json === true;
  const jsonError = (kind: string, code: number, message: string) => {
    if (wantsJson() && !ctx.stdout.destroyed) ctx.stdout.write(`${JSON.stringify({ error: { kind, code, message } })}\n`);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    signalHeard(signal);
    if (++signals > 1) process.exit(EXIT.interrupted);
    controller.abort(new Error('interrupted'));
    ctx.stderr.write('ctx: interrupted\n');
    jsonError('interrupted', EXIT.interrupted, 'interrupted');
    stop(EXIT.interrupted);
  };
  const onStdoutError = (e: NodeJS.ErrnoException) => {
    // `ctx inspect big | head`: the reader left, nothing more to say.
    if (e.code === 'EPIPE') {
      controller.abort(new Error('stdout closed'));
      stop(EXIT.ok);
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // After the listeners: from here on the addon remembers a signal still queued for them, which a
  // bounded call (bounded-run.ts) then does not start with.
  useSignalCatcher(() => loadAddon()?.signals ?? null);
  ctx.stdout.on('error', onStdoutError);
  let action: Promise<unknown> | undefined;
  try {
    program = buildProgram(ctx);
    applySettings(program, env, loadConfig(env));
    action = program.parseAsync(argv);
    return await Promise.race([action.then(() => ctx.exitCode), stopped]);
  } catch (e) {
    if (controller.signal.aborted) return EXIT.interrupted;
    verbose ||= program?.opts().verbose === true;
    const { code, text } = describeFailure(e, verbose);
    // The message may quote a file name or a model's text: escaped on a terminal (ui/format.ts).
    if (text) ctx.stderr.write(isTerminal(ctx.stderr) ? escapeControls(text) : text);
    if (code !== EXIT.ok && text) jsonError(failureKind(e), code, text.split('\n')[0]!.replace(/^ctx: /, ''));
    return code;
  } finally {
    // An abandoned action may still reject once it notices the abort; that is expected.
    action?.catch(() => {});
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    ctx.stdout.off('error', onStdoutError);
  }
}

/** The exit code and the stderr text for anything a run threw. Exported for tests. */
export function describeFailure(e: unknown, verbose: boolean): { code: number; text: string } {
  if (e instanceof CommanderError) {
    // Help and --version have already been printed; "ctx" alone printed help to stderr.
    if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return { code: EXIT.ok, text: '' };
    if (e.code === 'commander.help') return { code: EXIT.usage, text: '' };
    const message = e.message.replace(/^error: /, '').replace(/\s*\n\s*/g, ' ');
    return { code: EXIT.usage, text: `ctx: ${message} (see ${(e as CommandParseError).commandPath ?? 'ctx'} --help)\n` };
  }
  if (isCtxError(e)) {
    return { code: e.exitCode, text: `ctx: ${e.message}\n${verbose ? stackOf(e) : ''}` };
  }
  const message = e instanceof Error ? e.message : String(e);
  if (verbose) return { code: EXIT.internal, text: `ctx: internal error: ${message}\n${stackOf(e)}` };
  return { code: EXIT.internal, text: `ctx: internal error: ${message} (run with --verbose for the stack trace)\n` };
}

/** The exit kind of a failure, as --json and --events name it. */
function failureKind(e: unknown): string {
  if (isCtxError(e)) return e.kind;
  return e instanceof CommanderError ? 'usage' : 'internal';
}

function stackOf(e: unknown): string {
  let text = '';
  for (let err: unknown = e, depth = 0; err instanceof Error && depth < 5; err = err.cause, depth++) {
    text += `${depth ? 'caused by: ' : ''}${err.stack ?? err.message}\n`;
  }
  return text;
}
