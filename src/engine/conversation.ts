// The prompt around a document: system + document + question, question last, so the tokens up to
// the end of the document are the same whatever is asked — the session after reading them is what
// the cache keeps and what `ctx chat` reuses for every follow-up.
//
// With a chat template (prompt-format.ts: the model's, or one the user names), the template is
// rendered once with markers where the document and the answer go, and split there. Without one
// (base models, ctx's own demo model, or --raw), the prompt is plain: [BOS] document, a blank
// line, the question.

import type { TextTokenizer } from '../model/tokenizer.js';
import type { FinishReason } from './generate.js';
import { promptFormat, type PromptFormat } from './prompt-format.js';

const DOC = '\u27e6ctx:document\u27e7';
const ANSWER = '\u27e6ctx:answer\u27e7';

/** End-of-turn tokens that templates use besides eos_token. */
const END_OF_TURN = ['<|im_end|>', '<|eot_id|>', '<|end|>', '<|endoftext|>', '</s>', '<end_of_turn>'];

type ChatTurn = { role: 'system' | 'user' | 'assistant'; content: string };

export interface Turn {
  question: string;
  answer: string;
  /**
   * For replaying the exchange exactly (chat --continue): how the answer ended, its ids as they were
   * fed (a decoding step each), and the id left deferred after them (or null).
   */
  reason?: FinishReason;
  answerTokens?: number[];
  deferredToken?: number | null;
}

export class Conversation {
  private readonly turns: Turn[] = [];
  private endReason: FinishReason | null = null;
  readonly format: PromptFormat;

  constructor(
    private readonly tokenizer: TextTokenizer,
    private readonly system?: string,
    /** Default: the model's chat template, or plain text when it has none. */
    format?: PromptFormat,
  ) {
    this.format = format ?? promptFormat(tokenizer);
  }

  get templated(): boolean {
    return this.format.render !== null;
  }

  private render(messages: ChatTurn[]): string {
    return this.format.render!(messages, { addGenerationPrompt: true });
  }

  /** Tokens before the document (system prompt, start of the user turn, BOS). */
  documentPrefix(): Int32Array {
    const t = this.tokenizer;
    let text = '';
    if (this.templated) {
      const rendered = this.render(this.messages(DOC));
      text = rendered.slice(0, rendered.indexOf(DOC));
    } else if (this.system) {
      text = `${this.system}\n\n`;
    }
    const ids = t.encode(text, { addSpecialTokens: false });
    if (t.addBos && t.bosId !== null && ids[0] !== t.bosId) ids.unshift(t.bosId);
    return Int32Array.from(ids);
  }

  /** Tokens after the document for the first question (end of the user turn, assistant header). */
  firstQuestion(question: string): Int32Array {
    if (!this.templated) return this.encode(`\n\n${question}`);
    const rendered = this.render(this.messages(`${DOC}\n\n${question}`));
    return this.encode(rendered.slice(rendered.indexOf(DOC) + DOC.length));
  }

  /**
   * Tokens that follow the previous answer for a follow-up question. `endedWithEos`: the answer
   * stopped on an end-of-turn token, which the session already holds (deferred), so the template's
   * own end-of-turn text is not repeated.
   */
  followUp(question: string, endedWithEos: boolean): Int32Array {
    const last = this.turns[this.turns.length - 1];
    if (!last) return this.firstQuestion(question);
    if (!this.templated) return this.encode(`\n\n${question}`);
    const msgs: ChatTurn[] = this.system ? [{ role: 'system', content: this.system }] : [];
    this.turns.forEach((turn, i) => {
      msgs.push({ role: 'user', content: i === 0 ? `${DOC}\n\n${turn.question}` : turn.question });
      // Only the text after the last answer is needed; a marker finds where that answer ends.
      msgs.push({ role: 'assistant', content: i === this.turns.length - 1 ? ANSWER : turn.answer });
    });
    msgs.push({ role: 'user', content: question });
    const rendered = this.render(msgs);
    let tail = rendered.slice(rendered.lastIndexOf(ANSWER) + ANSWER.length);
    if (endedWithEos) {
      const eos = END_OF_TURN.find((s) => tail.startsWith(s));
      if (eos) tail = tail.slice(eos.length);
    }
    return this.encode(tail);
  }

  /** Records a finished exchange (needed to render follow-ups) and how the answer ended. */
  record(turn: Turn, reason: FinishReason): void {
    this.turns.push({ ...turn, reason });
    this.endReason = reason;
  }

  /** Tokens that follow what the session holds for the next question: the first, or a follow-up. */
  nextQuestion(question: string): Int32Array {
    return this.turns.length === 0 ? this.firstQuestion(question) : this.followUp(question, this.endReason === 'eos');
  }

  /** How the last answer ended ('eos': its end-of-turn token is already in the session). */
  get lastReason(): FinishReason | null {
    return this.endReason;
  }

  history(): readonly Turn[] {
    return this.turns;
  }

  /** Token ids that end an answer. */
  stopTokens(): number[] {
    const t = this.tokenizer;
    const ids = new Set(t.eosIds);
    for (const s of END_OF_TURN) {
      const id = t.tokenToId(s);
      if (id !== null && t.isSpecial(id)) ids.add(id);
    }
    return [...ids];
  }

  private messages(firstUser: string): ChatTurn[] {
    const m: ChatTurn[] = [];
    if (this.system) m.push({ role: 'system', content: this.system });
    m.push({ role: 'user', content: firstUser });
    return m;
  }

  private encode(text: string): Int32Array {
    return Int32Array.from(this.tokenizer.encode(text, { addSpecialTokens: false }));
  }
}
