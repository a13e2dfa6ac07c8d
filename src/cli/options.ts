// Settings: every option of every command can come from four places. The first one that has a
// value wins:
//
//   1. the command line            ctx inspect --max-file-bytes 4M
//   2. the environment             CTX_MAX_FILE_BYTES=4M       (CTX_ + the long flag in UPPER_SNAKE)
//   3. the config file             {"maxFileBytes": "4M"}       ($XDG_CONFIG_HOME/ctx/config.json)
//   4. the built-in default
//
// The config file's keys are the long flags in camelCase ("--no-stream" → "noStream"). Keys at the
// top level apply to every command that has the option; an object named after a command holds
// settings for that command only and wins over the top level ({"inspect": {"json": true}}), and
// sections nest for subcommands ({"models": {"pull": {...}}}).
//
// There is no per-option code: applySettings walks the options each command declares. It runs
// after the program is built and before commander parses argv; it stores values with the source
// "config" or "env", and commander's own parsing then overwrites them with "cli" values.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { StrategyName } from '../engine/strategies/index.js';
import { CtxError, fsError } from '../errors.js';
import { parseByteSize } from '../units.js';
import { DEFAULT_MAX_FILE_BYTES } from '../input/tree.js';
import { DEFAULT_MODEL } from '../model/registry.js';
import { ctxConfigDir } from '../model/paths.js';

export const ENV_PREFIX = 'CTX_';

export interface ConfigFile {
  path: string;
  values: Record<string, unknown>;
}

// --- where the config file is ------------------------------------------------------------------

/**
 * config.json in ctx's config folder: $CTX_CONFIG_DIR, else $XDG_CONFIG_HOME/ctx, else ~/.config/ctx
 * (model/paths.ts decides, for every part of ctx).
 */
export function configFilePath(env: NodeJS.ProcessEnv = process.env): string {
  return join(ctxConfigDir(env), 'config.json');
}

/** Reads the config file; undefined when there is none. Unreadable or invalid → a usage error naming it. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): ConfigFile | undefined {
  const path = configFilePath(env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CtxError('usage', `config file cannot be read: ${fsError(e, '').message}`, { path, cause: e });
  }
  let values: unknown;
  try {
    values = JSON.parse(text);
  } catch (e) {
    throw new CtxError('usage', `config file is not valid JSON (${(e as Error).message})`, { path, cause: e });
  }
  if (!isPlainObject(values)) throw new CtxError('usage', 'config file must hold a JSON object ({"model": "…"})', { path });
  return { path, values };
}

// --- names -------------------------------------------------------------------------------------

/** The options a user can set: all declared ones except --version (help is not in the list). */
function settableOptions(cmd: Command): Option[] {
  return cmd.options.filter((o) => o.long && o.long !== '--version');
}

/** "--max-file-bytes" → "maxFileBytes"; "--no-stream" → "noStream". */
export function configKey(option: Option): string {
  return option.long!.replace(/^--/, '').replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** "--max-file-bytes" → "CTX_MAX_FILE_BYTES"; "--no-stream" → "CTX_NO_STREAM". */
export function envVarName(option: Option): string {
  return ENV_PREFIX + option.long!.replace(/^--/, '').replace(/-/g, '_').toUpperCase();
}

// --- applying config and environment ----------------------------------------------------------

/** Stores config-file and environment values on every command of the tree (see the top of this file). */
export function applySettings(root: Command, env: NodeJS.ProcessEnv = process.env, config?: ConfigFile): void {
  if (config) checkKeys(root, config.values, config.path, []);
  visit(root, config?.values ?? {});

  function visit(cmd: Command, values: Record<string, unknown>): void {
    for (const option of settableOptions(cmd)) {
      const key = configKey(option);
      if (key in values && config) {
        const v = fromConfig(option, values[key], `setting "${key}"`, config.path);
        cmd.setOptionValueWithSource(option.attributeName(), v, 'config');
      }
      const name = envVarName(option);
      const text = env[name];
      if (text !== undefined) cmd.setOptionValueWithSource(option.attributeName(), fromEnv(option, text, name), 'env');
    }
    for (const sub of cmd.commands) {
      const section = values[sub.name()];
      const scalars = Object.fromEntries(Object.entries(values).filter(([, v]) => !isPlainObject(v)));
      visit(sub, { ...scalars, ...(isPlainObject(section) ? section : {}) });
    }
  }
}

/** Every key must name an option of the command (or of one below it) or a subcommand's section. */
function checkKeys(cmd: Command, values: Record<string, unknown>, path: string, section: string[]): void {
  const known = new Set(allOptionKeys(cmd));
  const where = section.length ? ` in section "${section.join('.')}"` : '';
  for (const [key, value] of Object.entries(values)) {
    if (isPlainObject(value)) {
      const sub = cmd.commands.find((c) => c.name() === key);
      if (!sub) throw new CtxError('usage', `config file: "${key}"${where} is not a command`, { path });
      checkKeys(sub, value, path, [...section, key]);
    } else if (!known.has(key)) {
      throw new CtxError('usage', `config file: unknown setting "${key}"${where}`, { path });
    }
  }
}

function allOptionKeys(cmd: Command): string[] {
  return [...settableOptions(cmd).map(configKey), ...cmd.commands.flatMap(allOptionKeys)];
}

function fromConfig(option: Option, value: unknown, what: string, path: string): unknown {
  const fail = (why: string) => new CtxError('usage', `config file: ${what}: ${why}`, { path });
  if (!takesValue(option)) {
    if (typeof value !== 'boolean') throw fail('must be true or false');
    return option.negate ? !value : value;
  }
  const parseOne = (v: unknown) => {
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw fail('must be a string or a number');
    try {
      return parseValue(option, String(v));
    } catch (e) {
      throw fail((e as Error).message);
    }
  };
  if (option.variadic) return (Array.isArray(value) ? value : [value]).map(parseOne);
  return parseOne(value);
}

function fromEnv(option: Option, text: string, name: string): unknown {
  const fail = (why: string) => new CtxError('usage', `${name}=${text}: ${why}`);
  if (!takesValue(option)) {
    const on = parseBoolean(text);
    if (on === undefined) throw fail('expected 1 or 0 (or true/false, yes/no, on/off)');
    return option.negate ? !on : on;
  }
  try {
    const v = parseValue(option, text);
    return option.variadic ? [v] : v;
  } catch (e) {
    throw fail((e as Error).message);
  }
}

function takesValue(option: Option): boolean {
  return option.required || option.optional;
}

/** The option's own parser (choices, sizes, numbers) as commander would run it on a flag's value. */
function parseValue(option: Option, text: string): unknown {
  return option.parseArg ? option.parseArg(text, undefined) : text;
}

export function parseBoolean(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(t)) return true;
  if (['0', 'false', 'no', 'off', ''].includes(t)) return false;
  return undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// --- the options commands share ---------------------------------------------------------------
// Each command adds the ones it uses, so `--help` shows only what applies. Global ones (--json,
// --quiet, --verbose) live on the program in main.ts.

/** The strategies a user can name; `auto` lets the engine choose from the model and the length. */
export const STRATEGY_CHOICES = ['auto', 'beacon', 'select', 'stream', 'full', 'focus'] as const satisfies readonly (StrategyName | 'auto')[];

export function modelOption(): Option {
  return new Option('-m, --model <name>', `model: a name from \`ctx models list\`, a model folder, a .gguf file, ollama:NAME or lms:PUBLISHER/MODEL (default ${DEFAULT_MODEL}, downloaded on first use)`);
}

export function systemOption(): Option {
  return new Option('-s, --system <text>', 'system prompt');
}

/** ask and summarize: source markers in the document and checked citations in the answer. */
export function citeOption(): Option {
  return new Option('--no-cite', 'no source markers in the document and no citation checks');
}

export function noStreamOption(): Option {
  return new Option('--no-stream', 'print the answer when it is complete instead of as it is generated');
}

/** KV storage on the cpu backend (the default backend); ask/chat/summarize run with it, inspect plans with it. */
export function kvDtypeOption(): Option {
  return new Option('--kv-dtype <type>', 'KV storage on the cpu backend: f16 (default, half the memory) or f32 (exact checks)').choices(['f16', 'f32']);
}

export function strategyOption(): Option {
  return new Option('--strategy <name>', 'long-context strategy').choices(STRATEGY_CHOICES).default('auto');
}

/** Seconds to wait for the first bytes of a piped stdin (a pipe nobody writes to would wait forever). */
export const DEFAULT_STDIN_WAIT_SECONDS = 60;

export function stdinWaitOption(): Option {
  return new Option('--stdin-wait <seconds>', 'give up when piped stdin sends nothing for this long (0 = wait forever)')
    .argParser((text: string) => {
      const v = Number(text);
      if (!Number.isFinite(v) || v < 0) throw new InvalidArgumentError('expected a number of seconds ≥ 0');
      return v;
    })
    .default(DEFAULT_STDIN_WAIT_SECONDS);
}

export function maxFileBytesOption(): Option {
  return new Option('--max-file-bytes <size>', 'skip files larger than this in folders and globs (e.g. 512K, 4M)')
    .argParser(byteSizeArg)
    .default(DEFAULT_MAX_FILE_BYTES, '1M');
}

export function followLinksOption(): Option {
  return new Option('--follow-links', 'in folders and globs, also read symbolic links that lead outside the folder');
}

export function byteSizeArg(text: string): number {
  const n = parseByteSize(text);
  if (n === undefined || n <= 0) throw new InvalidArgumentError('not a size (use e.g. 1048576, 512K or 4M)');
  return n;
}
