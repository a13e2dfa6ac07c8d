// How the prompt around a document is written: the model's own chat template (the default), plain
// text ("raw": the document, a blank line, the question — what a base model without a template
// gets), or a chat template the user names: a built-in one by name, or a Jinja file in the format of
// Hugging Face's chat_template. conversation.ts renders with it.

import { readFileSync } from 'node:fs';
import { CtxError, fsError } from '../errors.js';
import { ChatTemplate, type ChatMessage, type ChatTemplateOptions } from '../model/chat-template.js';
import type { TextTokenizer } from '../model/tokenizer.js';

/** What the user asked for: the model's template, plain text, or a template by name or file. */
export type PromptFormatChoice = 'model' | 'raw' | { template: string };

export interface PromptFormat {
  /** How it is described to the user: "the model's chat template", "plain text (--raw)", "chatml"… */
  description: string;
  /** Renders messages; null for plain text. */
  render: ((messages: ChatMessage[], opts: ChatTemplateOptions) => string) | null;
  /** The plain-text format was not asked for: the model has no chat template. */
  missingTemplate: boolean;
}

/** Chat templates ctx knows by name, for models whose own template is missing or unwanted. */
export const NAMED_TEMPLATES: Record<string, string> = {
  // <|im_start|>role\ncontent<|im_end|>\n (Qwen, many fine-tunes)
  chatml:
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}" +
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}",
  // <|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|> (Llama 3)
  llama3:
    '{% if bos_token %}{{ bos_token }}{% endif %}{% for m in messages %}<|start_header_id|>{{ m.role }}<|end_header_id|>\n\n{{ m.content }}<|eot_id|>{% endfor %}' +
    '{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}',
  // <start_of_turn>user|model\ncontent<end_of_turn>\n (Gemma: a system prompt is a user turn)
  gemma:
    "{% if bos_token %}{{ bos_token }}{% endif %}{% for m in messages %}<start_of_turn>{{ 'model' if m.role == 'assistant' else 'user' }}\n{{ m.content }}<end_of_turn>\n{% endfor %}" +
    '{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}',
};

/** The prompt format for `choice` with this tokenizer. A template file that cannot be read or parsed is a usage error naming it. */
export function promptFormat(tokenizer: TextTokenizer, choice: PromptFormatChoice = 'model'): PromptFormat {
  if (choice === 'raw') return { description: 'plain text (--raw): the document, a blank line, the question', render: null, missingTemplate: false };
  if (choice === 'model') {
    if (tokenizer.chatTemplate === null) {
      return { description: 'plain text: the document, a blank line, the question', render: null, missingTemplate: true };
    }
    return { description: "the model's chat template", render: (m, o) => tokenizer.applyChatTemplate(m, o), missingTemplate: false };
  }
  const { source, path, description } = templateSource(choice.template);
  const token = (id: number | undefined | null) => (id === undefined || id === null ? null : tokenizer.idToToken(id));
  let template: ChatTemplate;
  try {
    template = new ChatTemplate(source, { bos_token: token(tokenizer.bosId), eos_token: token(tokenizer.eosIds[0]), unk_token: null, pad_token: null }, path);
  } catch (e) {
    throw new CtxError('usage', (e as Error).message, { cause: e });
  }
  return { description, render: (m, o) => template.render(m, o), missingTemplate: false };
}

function templateSource(nameOrFile: string): { source: string; path: string; description: string } {
  const named = NAMED_TEMPLATES[nameOrFile];
  if (named !== undefined) return { source: named, path: `--template ${nameOrFile}`, description: `the ${nameOrFile} chat template (--template)` };
  try {
    return { source: readFileSync(nameOrFile, 'utf8'), path: nameOrFile, description: `the chat template in ${nameOrFile} (--template)` };
  } catch (e) {
    const cause = fsError(e, nameOrFile, 'usage');
    throw new CtxError('usage', `--template ${nameOrFile}: not a template name (${Object.keys(NAMED_TEMPLATES).join(', ')}) and not a readable file (${cause.message.replace(`${nameOrFile}: `, '')})`, { cause: e });
  }
}

/** What the user should know before reading: a plan note when the prompt is not the model's own chat template. */
export function formatNote(f: PromptFormat): string[] {
  if (f.missingTemplate) {
    return [`the model has no chat template, so its prompt is ${f.description}; --template NAME|FILE gives it a chat format, --raw keeps this one`];
  }
  return f.render === null || f.description !== "the model's chat template" ? [`prompt: ${f.description}`] : [];
}
