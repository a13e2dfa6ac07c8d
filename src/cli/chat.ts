// `ctx chat <inputs…>`: read the document once, then answer questions one after another; each
// follow-up reuses the read document and sees the conversation so far. Questions come from the
// terminal (or, when stdin is not a terminal and the document came from files, one per line).

import { createInterface } from 'node:readline/promises';
import { Command } from 'commander';
import { askQuestion } from '../engine/reader.js';
import { CtxError } from '../errors.js';
import { pickRenderer } from '../ui/pick.js';
import { openDocument } from './document-run.js';
import { addEngineOptions, samplingOptions, type EngineCliOptions } from './engine-options.js';
import { currentRun } from './io.js';

export function chatCommand(): Command {
  const cmd = new Command('chat')
    .description('read files, folders or a PDF once, then ask questions about them one after another')
    .argument('<inputs...>', 'files, folders or globs (questions are read from the terminal)');
  return addEngineOptions(cmd, { maxTokens: 512 }).action(async (inputs: string[], _o: unknown, c: Command) => {
    const run = currentRun();
    const o = c.optsWithGlobals<EngineCliOptions>();
    if (inputs.includes('-')) throw new CtxError('usage', 'chat reads its questions from stdin, so the document cannot come from stdin: name files');
    const r = pickRenderer(o, run);
    const opened = await openDocument(inputs, o, r, run.signal, (conv) => conv.firstQuestion('?').length + 64);
    const { engine, session, conversation } = opened;
    const tty = run.stdinKind === 'tty';
    const rl = createInterface({ input: run.stdin, output: tty ? run.stderr : undefined, terminal: tty });
    try {
      while (!run.signal.aborted) {
        const line = tty ? await rl.question('> ') : await nextLine(rl);
        if (line === null) break;
        const question = line.trim();
        if (!question) continue;
        if (question === '/exit' || question === '/quit') break;
        r.event({ type: 'question', text: question });
        const answering = askQuestion(engine, session, conversation, question, { ...samplingOptions(o), maxNewTokens: o.maxTokens, signal: run.signal });
        let step = await answering.next();
        while (!step.done) {
          r.event({ type: 'token', text: step.value });
          step = await answering.next();
        }
        r.event({ type: 'answer', ...step.value });
      }
    } finally {
      rl.close();
    }
    r.finish();
    session.dispose();
    await engine.backend.dispose();
  });
}

/** The next line of a non-terminal stdin, or null at its end. */
async function nextLine(rl: ReturnType<typeof createInterface>): Promise<string | null> {
  const it = rl[Symbol.asyncIterator]();
  const { value, done } = await it.next();
  return done ? null : value;
}
