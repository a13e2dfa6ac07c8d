// Chat templates: the Jinja program in a model's tokenizer files that turns a list of messages into
// the exact prompt text the model was trained on. Rendered with @huggingface/jinja, with the same
// variables transformers' apply_chat_template passes (messages, add_generation_prompt and the
// special tokens bos_token, eos_token, unk_token, pad_token).
//
// A template is a program that comes with the model folder, and ctx does not trust it: a render has a
// deadline and stops on Ctrl-C (bounded-run.ts), `range()` is ctx's own, capped at MAX_RANGE items (the
// library's builds the whole list first, so range(1000000000) exhausted the heap and crashed the
// process before any deadline), and the rendered text may not exceed MAX_OUTPUT_CHARS plus four
// times the messages' length.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { CtxError } from '../errors.js';
import { runBounded } from './bounded-run.js';

export type ChatRole = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

export interface ChatTemplateOptions {
  /** End the prompt with the opening of an assistant turn, so the model answers next. */
  addGenerationPrompt: boolean;
}

/** The special-token strings a template may refer to; null when the tokenizer has none. */
export interface TemplateSpecialTokens {
  bos_token: string | null;
  eos_token: string | null;
  unk_token: string | null;
  pad_token: string | null;
}

type Json = Record<string, unknown>;

/**
 * Finds the chat template of a model folder, in the places transformers looks:
 * `chat_template.jinja` (newer exports), `tokenizer_config.json` "chat_template" (a string, or a list
 * of named templates of which ctx uses "default"), then `chat_template.json`. Null when there is none
 * (base models).
 */
export function findChatTemplate(modelDir: string, tokenizerConfig: Json): { template: string; path: string } | null {
  const jinjaPath = join(modelDir, 'chat_template.jinja');
  if (existsSync(jinjaPath)) return { template: readFileSync(jinjaPath, 'utf8'), path: jinjaPath };

  const configPath = join(modelDir, 'tokenizer_config.json');
  const fromConfig = pickTemplate(tokenizerConfig.chat_template, configPath);
  if (fromConfig !== null) return { template: fromConfig, path: configPath };

  const jsonPath = join(modelDir, 'chat_template.json');
  if (existsSync(jsonPath)) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(jsonPath, 'utf8'));
    } catch (e) {
      throw new CtxError('model', `not valid JSON (${(e as Error).message})`, { path: jsonPath });
    }
    const t = pickTemplate((parsed as Json | null)?.chat_template, jsonPath);
    if (t !== null) return { template: t, path: jsonPath };
  }
  return null;
}

function pickTemplate(value: unknown, path: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) {
    // [{ name: "default", template: "..." }, { name: "tool_use", ... }]
    const named = value.find((t) => (t as Json)?.name === 'default') ?? value[0];
    const template = (named as Json | undefined)?.template;
    if (typeof template === 'string') return template;
  }
  throw new CtxError('model', '"chat_template" is neither a string nor a list of named templates', { path });
}

/** Items a template's range() may produce; real templates loop over messages, a few hundred at most. */
export const MAX_RANGE = 100_000;
/** Rendered characters allowed beyond four times the messages' own length. */
export const MAX_OUTPUT_CHARS = 1_000_000;
/** The name templates' calls to range() are renamed to, so they reach ctx's bounded one. */
const BOUNDED_RANGE = '__ctx_bounded_range';

export interface RenderLimits {
  /** Milliseconds one render may take. Default 5000. */
  timeMs?: number;
}

/** A compiled template, parsed once and rendered per prompt. */
export class ChatTemplate {
  private readonly compiled: Template;
  private readonly timeMs: number;

  constructor(
    readonly source: string,
    private readonly specials: TemplateSpecialTokens,
    /** File the template came from, for error messages. */
    private readonly path: string,
    limits: RenderLimits = {},
  ) {
    this.timeMs = limits.timeMs ?? 5000;
    try {
      this.compiled = runBounded(
        () => new Template(source),
        this.timeMs,
        () => new CtxError('model', `chat template took more than ${this.timeMs} ms to parse`, { path }),
      );
    } catch (e) {
      if (e instanceof CtxError) throw e;
      throw new CtxError('model', `chat template does not parse: ${(e as Error).message}`, { path, cause: e });
    }
    renameIdentifier(this.compiled.parsed, 'range', BOUNDED_RANGE);
  }

  render(messages: ChatMessage[], opts: ChatTemplateOptions): string {
    const limit = MAX_OUTPUT_CHARS + 4 * messages.reduce((n, m) => n + m.content.length, 0);
    let text: string;
    try {
      text = runBounded(
        () =>
          this.compiled.render({
            // Plain objects: templates index them both as message.role and message['role'].
            messages: messages.map((m) => ({ role: m.role, content: m.content })),
            add_generation_prompt: opts.addGenerationPrompt,
            ...this.specials,
            [BOUNDED_RANGE]: boundedRange,
          }),
        this.timeMs,
        () => new CtxError('model', `chat template took more than ${this.timeMs} ms to render (a loop that does not end?)`, { path: this.path }),
      );
    } catch (e) {
      if (e instanceof CtxError) throw e;
      // Templates reject bad conversations themselves (raise_exception("Conversation roles must
      // alternate ...")); that message is the useful part.
      throw new CtxError('model', `chat template failed: ${(e as Error).message}`, { path: this.path, cause: e });
    }
    if (text.length > limit) {
      throw new CtxError('model', `chat template rendered ${text.length} characters for ${messages.length} messages, more than ctx allows (${limit})`, { path: this.path });
    }
    return text;
  }
}

/** Python's range(), as the library has it, refusing more than MAX_RANGE items before building any. */
function boundedRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new Error('range() step must not be zero');
  const count = Math.max(0, Math.ceil((stop - start) / step));
  if (!(count <= MAX_RANGE)) throw new Error(`range() of ${count} items is more than ctx allows in a template (${MAX_RANGE})`);
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(start + i * step);
  return out;
}

/**
 * Renames every variable `from` in a parsed template: nodes of type "Identifier", except attribute
 * names (`x.range`) and keyword-argument names (`f(range=1)`), which are not variables.
 */
function renameIdentifier(node: unknown, from: string, to: string): void {
  if (Array.isArray(node)) {
    for (const n of node) renameIdentifier(n, from, to);
    return;
  }
  if (!node || typeof node !== 'object') return;
  const n = node as { type?: unknown; value?: unknown; computed?: unknown; object?: unknown; key?: unknown };
  if (n.type === 'Identifier' && n.value === from) n.value = to;
  if (n.type === 'MemberExpression' && n.computed === false) return renameIdentifier(n.object, from, to);
  for (const [k, child] of Object.entries(node)) {
    if (n.type === 'KeywordArgumentExpression' && k === 'key') continue;
    if (child && typeof child === 'object') renameIdentifier(child, from, to);
  }
}

/** tokenizer_config.json writes special tokens either as strings or as AddedToken objects. */
export function specialTokenString(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as Json).content === 'string') return (value as Json).content as string;
  return null;
}
