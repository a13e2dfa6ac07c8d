// `ctx chat <inputs…>`: read the document once, then answer questions one after another; each
// follow-up reuses the read (condensed) document and sees the conversation so far.
//
// On a terminal (stdin, stdout and stderr all terminals; see ui/pick.ts) it is an Ink app with a
// prompt line:
//   Enter        asks the question typed; Alt+Enter adds a line to it; a paste is one question
//                (ui/ink/chat-input.ts has the rules for text that arrives with its Enter)
//   Ctrl-C       during an answer: stops that answer (what was written stays in the conversation;
//                pressed while the question itself is still being read, the answer stops at its
//                first piece); a second Ctrl-C before it has stopped ends ctx (exit 130)
//                at the prompt: clears the line; on an empty line: ends ctx (exit 130)
//                while reading: ends ctx (exit 130), nothing is cached
//   Ctrl-D       on an empty line: ends ctx (exit 0)
//   /clear       forgets the conversation, keeps the document (back to the state right after reading)
// -c/--continue picks up the last conversation about the same inputs (same model, strategy and
// backend): it is kept beside the session cache (cache/conversations.ts) after every answer and put
// back into the session before the first question (no answer is generated again).
//   /save FILE   writes the conversation to FILE (Markdown)
//   /help, /exit
// Otherwise (questions piped in) every line of stdin is a question, answered in turn on stdout;
// the same slash commands work, their messages go to stderr.

import { rename, rm, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline/promises';
import { resolve } from 'node:path';
import { Command } from 'commander';
import type { Answer } from '../engine/citations/source-marking.js';
import { openDocument } from '../engine/open.js';
import type { OpenDocument } from '../engine/open-document.js';
import { ConversationStore, conversationsDir } from '../cache/conversations.js';
import type { Turn } from '../engine/conversation.js';
import { CtxError, fsError, isCtxError } from '../errors.js';
import type { InkRenderer } from '../ui/ink/renderer.js';
import type { LineKind } from '../ui/ink/run-view.js';
import { adopt, chatUsesInk, pickRenderer, reporting } from '../ui/pick.js';
import { escapeControls, isTerminal } from '../ui/format.js';
import { addEngineOptions, documentOptions, samplingOptions, type EngineCliOptions } from './engine-options.js';
import type { RunContext } from './io.js';

const HELP = [
  'Enter asks the question; the answer streams in. Alt+Enter starts a new line in the question.',
  'A pasted block of lines is one question (Enter asks it); lines typed or sent with their Enter are asked in turn.',
  'Ctrl-C stops an answer; on an empty prompt (or twice during an answer) it quits ctx.',
  'Ctrl-D on an empty prompt quits too.',
  '/clear        forget the conversation, keep the document',
  '/save FILE    write the conversation to FILE (Markdown)',
  '/exit         quit',
];

export function chatCommand(run: RunContext): Command {
  const cmd = new Command('chat')
    .description('read files, folders or a PDF once, then ask questions about them one after another')
    .argument('<inputs...>', 'files, folders or globs (questions are read from the terminal, or one per line from stdin)')
    .option('-c, --continue', 'continue the last conversation about these inputs (kept with the session cache)')
    .addHelpText('after', `\nIn the chat:\n${HELP.map((l) => `  ${l}`).join('\n')}`);
  return addEngineOptions(cmd, { maxTokens: 512 }).action(async (inputs: string[], _o: unknown, c: Command) => {
    const o = c.optsWithGlobals<ChatOptions>();
    if (inputs.includes('-')) throw new CtxError('usage', 'chat reads its questions from stdin, so the document cannot come from stdin: name files');
    if (o.continue && o.cache === false) throw new CtxError('usage', '--continue finds the last conversation through the session cache, which --no-cache turns off');
    const ink = chatUsesInk(o, run) ? adopt(await inkChat(run, o), run.signal) : null;
    const r = ink ?? pickRenderer(o, run);
    const say: Say = ink ? (kind, line) => ink.say(kind, line) : (_kind, line) => !o.quiet && !o.json && !o.events && run.stderr.write(`${isTerminal(run.stderr) ? escapeControls(line) : line}\n`);
    await reporting(r, async () => {
      const doc = await openDocument(documentOptions(o, { specs: inputs }, run, r));
      const kept = doc.cacheKey ? { store: new ConversationStore(conversationsDir(run.env)), key: doc.cacheKey } : null;
      const chat = new Chat(doc, o, inputs, kept, (message) => r.event({ type: 'warning', message }));
      try {
        if (o.continue) await chat.continueLast(say, run.signal);
        doc.startSaving(); // the cache entry is written while chat waits for a question
        if (ink) await interactive(chat, ink, run);
        else await lineByLine(chat, run, say);
      } finally {
        await doc.close();
      }
      r.finish();
    });
  });
}

/** The Ink display with a prompt (imported only here and in ui/pick.ts: Ink takes a second to load). */
async function inkChat(run: RunContext, o: EngineCliOptions): Promise<InkRenderer> {
  const { InkRenderer } = await import('../ui/ink/renderer.js');
  return new InkRenderer({ stdout: run.stdout, stderr: run.stderr, stdin: run.stdin, stream: o.stream });
}

export interface ChatOptions extends EngineCliOptions {
  /** -c: continue the last conversation about these inputs. */
  continue?: boolean;
}

/** A line of the chat's own (help, confirmations, errors): above the prompt, or on stderr. */
type Say = (kind: LineKind, line: string) => void;

/** Where a conversation is kept for -c: the store and the document's session-cache key. */
interface Kept {
  store: ConversationStore;
  key: string;
}

/** A conversation about an open document, as the chat shows, saves and keeps it. */
export class Chat {
  readonly turns: Turn[] = [];

  constructor(
    private readonly doc: OpenDocument,
    private readonly o: EngineCliOptions,
    readonly inputs: string[],
    /** Null without the session cache: then nothing is kept. */
    private readonly kept: Kept | null = null,
    private readonly warn: (message: string) => void = () => {},
  ) {}

  /** -c: puts the last conversation kept for this document back, or says there is none. */
  async continueLast(say: Say, signal: AbortSignal): Promise<void> {
    const saved = this.kept ? await this.kept.store.load(this.kept.key) : null;
    if (!saved) {
      say('info', 'no earlier conversation about these inputs with this model and strategy: starting a new one');
      return;
    }
    try {
      await this.doc.resume(saved.turns, { signal });
    } catch (e) {
      if (signal.aborted || !isCtxError(e)) throw e;
      this.warn(`the last conversation cannot be continued (${e.message}): starting a new one`);
      return;
    }
    this.turns.push(...saved.turns.map((t) => ({ ...t })));
    const last = saved.turns[saved.turns.length - 1]!.question.replace(/\s+/g, ' ');
    say('info', `continuing the conversation of ${saved.savedAt.slice(0, 16).replace('T', ' ')} (${saved.turns.length} exchange${saved.turns.length === 1 ? '' : 's'}; last: "${last.length > 40 ? `${last.slice(0, 39)}…` : last}")`);
  }

  /**
   * Asks one question; its events go to the document's renderer. `stop` stops this answer (what
   * was written stays in the conversation; see engine/reader.ts AnswerOptions.stop); `run`
   * (Ctrl-C that ends ctx) stops everything.
   */
  async ask(question: string, stop: AbortSignal, run: AbortSignal): Promise<Answer> {
    const result = await this.doc.ask(question, { ...samplingOptions(this.o), signal: run, stop });
    this.turns.push({ question, answer: result.answer, reason: result.reason });
    await this.keep();
    return result;
  }

  /** Forgets the conversation (here and for -c); the document stays read. */
  async clear(): Promise<void> {
    this.doc.clear();
    this.turns.length = 0;
    await this.keep();
  }

  /** Keeps the conversation for -c; a failure to write it is a warning, never the end of the chat. */
  private async keep(): Promise<void> {
    if (!this.kept) return;
    try {
      await this.kept.store.save(this.kept.key, this.doc.history());
    } catch (e) {
      this.warn(`the conversation is not kept for --continue: ${(e as Error).message}`);
    }
  }

  /** The conversation as Markdown. */
  transcript(): string {
    const parts = [`# ctx chat: ${this.inputs.join(', ')}`, ''];
    for (const t of this.turns) {
      parts.push(`**Q:** ${t.question}`, '', t.answer.trim(), '');
      if (t.reason === 'aborted') parts.push('_(answer stopped)_', '');
    }
    return `${parts.join('\n').trimEnd()}\n`;
  }
}

/** The terminal chat: prompt, answer, repeat (keys and Ctrl-C rules at the top of this file). */
async function interactive(chat: Chat, ui: InkRenderer, run: RunContext): Promise<void> {
  for (;;) {
    const input = await ui.prompt();
    if (run.signal.aborted || input.kind === 'eof') return;
    if (input.kind === 'interrupt') throw new CtxError('interrupted', 'interrupted');
    const text = input.text.trim();
    if (!text) continue;
    if (text.startsWith('/')) {
      if ((await slashCommand(text, chat, (kind, line) => ui.say(kind, line))) === 'exit') return;
      continue;
    }
    const stop = new AbortController();
    ui.store.answering(() => stop.abort());
    try {
      await chat.ask(text, stop.signal, run.signal);
    } catch (e) {
      if (run.signal.aborted || !isCtxError(e) || e.kind !== 'doesNotFit') throw e;
      ui.say('error', `${e.message} — /clear starts again with the document alone`);
    } finally {
      ui.store.answering(null);
    }
  }
}

/** Questions from a pipe or file, one per line; answers on stdout. */
async function lineByLine(chat: Chat, run: RunContext, say: Say): Promise<void> {
  const tty = run.stdinKind === 'tty';
  const rl = createInterface({ input: run.stdin, output: tty ? run.stderr : undefined, terminal: tty });
  try {
    while (!run.signal.aborted) {
      const line = tty ? await rl.question('> ') : await nextLine(rl);
      if (line === null) break;
      const question = line.trim();
      if (!question) continue;
      if (question.startsWith('/')) {
        if ((await slashCommand(question, chat, say)) === 'exit') break;
        continue;
      }
      await chat.ask(question, run.signal, run.signal);
    }
  } finally {
    rl.close();
  }
}

/** Runs a /command; returns 'exit' for /exit and /quit. */
export async function slashCommand(text: string, chat: Chat, say: (kind: LineKind, line: string) => void): Promise<'exit' | 'continue'> {
  const [name, ...rest] = text.split(/\s+/);
  const arg = rest.join(' ');
  switch (name) {
    case '/exit':
    case '/quit':
      return 'exit';
    case '/help':
      for (const l of HELP) say('info', l);
      return 'continue';
    case '/clear':
      await chat.clear();
      say('info', 'conversation cleared; the document is still read');
      return 'continue';
    case '/save': {
      if (!arg) {
        say('warning', 'usage: /save FILE');
        return 'continue';
      }
      const path = resolve(arg);
      try {
        await writeAtomically(path, chat.transcript());
        say('info', `saved ${chat.turns.length} exchange${chat.turns.length === 1 ? '' : 's'} to ${arg}`);
      } catch (e) {
        say('error', `could not save: ${fsError(e, arg, 'io').message}`);
      }
      return 'continue';
    }
    default:
      say('warning', `unknown command ${name}; /help lists them`);
      return 'continue';
  }
}

/** Temp file beside the target, then rename: a failed save leaves any earlier file as it was. */
async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, text, { flag: 'w' });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    throw e;
  }
}

/** The next line of a non-terminal stdin, or null at its end. */
async function nextLine(rl: ReturnType<typeof createInterface>): Promise<string | null> {
  const it = rl[Symbol.asyncIterator]();
  const { value, done } = await it.next();
  return done ? null : value;
}
