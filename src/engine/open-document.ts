// A document read into a session, to ask about: the first question and follow-ups, each seeing the
// conversation so far, without reading the document again. open.ts makes one.
//
//   const doc = await openDocument({ inputs: ['report.pdf'], model: 'needle-demo' });
//   const reply = doc.ask('What changed?');            // an AnswerStream: iterate it, await it
//   doc.clear();                                        // forget the conversation, keep the document
//   await doc.close();
//
// One question at a time: ask again once the previous answer is complete.

import { AnswerStream } from './answer-stream.js';
import type { PendingSave } from './cached-read.js';
import type { Answer, SourceMarking } from './citations/source-marking.js';
import { Conversation, type Turn } from './conversation.js';
import type { EventSink } from './events.js';
import type { LoadedModel } from './loaded-model.js';
import type { RunPlan } from './plan.js';
import type { PromptFormat } from './prompt-format.js';
import { askQuestion, emptyAnswerWarning, replayExchange } from './reader.js';
import type { SamplingOptions } from './sampler.js';
import { Session, type SessionSnapshot } from './session.js';

export interface AskOptions extends SamplingOptions {
  /** Longest answer in tokens. Default: the document's maxTokens (512). */
  maxTokens?: number;
  /** Texts that end the answer when the model writes them. */
  stopStrings?: string[];
  /** Cancels at once, even while the question is being read (then clear() or close() the document). */
  signal?: AbortSignal;
  /** Stops this answer and keeps what was written (reason "aborted"); the conversation stays whole. */
  stop?: AbortSignal;
}

/** What an OpenDocument is made of (open.ts). */
export interface OpenedParts {
  loaded: LoadedModel;
  sources: SourceMarking;
  emit: EventSink;
  system?: string;
  format: PromptFormat;
  maxTokens?: number;
  /** Frees what the document owns besides its session (the model, when it was loaded for it). */
  close: () => Promise<void>;
}

export class OpenDocument {
  private session: Session;
  private conversation: Conversation;
  /**
   * The session right after reading: clear() goes back to it. It shares the session's KV rows (no
   * copy): the sequence copies a row only before changing one the snapshot holds (contract.ts).
   */
  private readonly afterRead: SessionSnapshot;
  private busy = false;
  private closed = false;

  constructor(
    private readonly parts: OpenedParts,
    session: Session,
    conversation: Conversation,
    /** How the document was read: strategy, KV rows and bytes, notes. */
    readonly plan: RunPlan,
    /** The document's key in the session cache (null when the cache is off): what is kept about it goes under it. */
    readonly cacheKey: string | null = null,
    /** Its cache entry, not yet written: started after the first answer token (or by startSaving()); close() finishes it. */
    private readonly saving: PendingSave | null = null,
  ) {
    this.session = session;
    this.conversation = conversation;
    this.afterRead = session.snapshot();
  }

  get loaded(): LoadedModel {
    return this.parts.loaded;
  }

  /** Tokens the strategy can still take (questions and answers). */
  remainingCapacity(): number {
    return this.session.remainingCapacity();
  }

  /**
   * Asks a question (the first, or a follow-up). Emits question, token… and answer events (and
   * citations with cite on); the reply gives the text as it comes and the Answer at the end.
   */
  ask(question: string, o: AskOptions = {}): AnswerStream<Answer> {
    if (this.closed) throw new Error('this document is closed');
    if (this.busy) throw new Error('one question at a time: wait for the previous answer');
    this.busy = true;
    const { emit, sources } = this.parts;
    return new AnswerStream(async (onText) => {
      try {
        emit({ type: 'question', text: question });
        const result = await askQuestion(this.parts.loaded, this.session, this.conversation, `${question}${sources.instruction()}`, {
          ...o,
          maxNewTokens: o.maxTokens ?? this.parts.maxTokens ?? 512,
          onText: (text) => {
            emit({ type: 'token', text });
            onText(text);
            this.startSaving(); // the first token is out: the cache write no longer delays it
          },
        });
        const answer = sources.finishAnswer(result, emit);
        const empty = emptyAnswerWarning(result, this.parts.format);
        if (empty) emit({ type: 'warning', message: empty });
        return answer;
      } finally {
        this.busy = false;
        this.startSaving(); // an answer with no text, or one that failed
      }
    });
  }

  /**
   * Starts writing the document's cache entry now, if it has one still to write (a fresh read with
   * the cache on). ask() starts it after the first answer token; chat starts it while it waits for
   * the first question. The write goes on in the background; close() waits for it.
   */
  startSaving(): void {
    void this.saving?.start();
  }

  /** The exchanges so far, as resume() takes them back. */
  history(): Turn[] {
    return this.conversation.history().map((t) => ({ ...t }));
  }

  /**
   * Continues an earlier conversation: its exchanges go back into the session (no answer is
   * generated), and the next question follows them. Only on a document with no exchange yet.
   */
  async resume(turns: readonly Turn[], o: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.busy || this.conversation.history().length > 0) throw new Error('resume() comes before the first question');
    this.busy = true;
    try {
      for (const turn of turns) await replayExchange(this.parts.loaded, this.session, this.conversation, turn, o.signal);
    } catch (e) {
      this.busy = false;
      this.clear(); // a half-replayed conversation is no conversation
      throw e;
    }
    this.busy = false;
  }

  /** Forgets the conversation; the document stays read. */
  clear(): void {
    if (this.busy) throw new Error('cannot clear while an answer is being written');
    this.session.dispose();
    this.session = Session.restore(this.parts.loaded.backend, this.afterRead);
    this.conversation = new Conversation(this.parts.loaded.tokenizer, this.parts.system, this.parts.format);
  }

  /** Frees the session, and the model when it was loaded for this document. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.session.dispose();
    await this.saving?.start();
    await this.parts.close();
  }
}
