// Chat templates: the Jinja program in a model's tokenizer files that turns a list of messages into
// the exact prompt text the model was trained on. Rendered with @huggingface/jinja, with the same
// variables transformers' apply_chat_template passes (messages, add_generation_prompt and the
// special tokens bos_token, eos_token, unk_token, pad_token).

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { CtxError } from '../errors.js';

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

/** A compiled template, parsed once and rendered per prompt. */
export class ChatTemplate {
  private readonly compiled: Template;

  constructor(
    readonly source: string,
    private readonly specials: TemplateSpecialTokens,
    /** File the template came from, for error messages. */
    private readonly path: string,
  ) {
    try {
      this.compiled = new Template(source);
    } catch (e) {
      throw new CtxError('model', `chat template does not parse: ${(e as Error).message}`, { path, cause: e });
    }
  }

  render(messages: ChatMessage[], opts: ChatTemplateOptions): string {
    try {
      return this.compiled.render({
        // Plain objects: templates index them both as message.role and message['role'].
        messages: messages.map((m) => ({ role: m.role, content: m.content })),
        add_generation_prompt: opts.addGenerationPrompt,
        ...this.specials,
      });
    } catch (e) {
      // Templates reject bad conversations themselves (raise_exception("Conversation roles must
      // alternate ...")); that message is the useful part.
      throw new CtxError('model', `chat template failed: ${(e as Error).message}`, { path: this.path, cause: e });
    }
  }
}

/** tokenizer_config.json writes special tokens either as strings or as AddedToken objects. */
export function specialTokenString(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as Json).content === 'string') return (value as Json).content as string;
  return null;
}
