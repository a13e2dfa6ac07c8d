// `ctx ask <inputs…> "<question>"`: read the document, answer one question, stream the answer.

import { Command } from 'commander';
import { askQuestion } from '../engine/reader.js';
import type { Renderer } from '../ui/events.js';
import { pickRenderer } from '../ui/pick.js';
import { openDocument } from './document-run.js';
import { addEngineOptions, samplingOptions, type EngineCliOptions } from './engine-options.js';
import { currentRun, inputsAndQuestion } from './io.js';

export function askCommand(): Command {
  const cmd = new Command('ask')
    .description('read files, folders, a PDF or piped text, and answer a question about them')
    .argument('<inputs-and-question...>', 'inputs (files, folders, globs, - for stdin), then the question last');
  return addEngineOptions(cmd, { maxTokens: 512 }).action(async (args: string[], _o: unknown, c: Command) => {
    const run = currentRun();
    const o = c.optsWithGlobals<EngineCliOptions>();
    const { specs, question } = inputsAndQuestion(args, run);
    await ask(specs, question, o, pickRenderer(o, run), run.signal);
  });
}

export async function ask(specs: string[], question: string, o: EngineCliOptions, r: Renderer, signal: AbortSignal): Promise<void> {
  const opened = await openDocument(specs, o, r, signal, (c) => c.firstQuestion(question).length);
  const { engine, session, conversation } = opened;
  r.event({ type: 'question', text: question });
  const answering = askQuestion(engine, session, conversation, question, { ...samplingOptions(o), maxNewTokens: o.maxTokens, signal });
  let step = await answering.next();
  while (!step.done) {
    r.event({ type: 'token', text: step.value });
    step = await answering.next();
  }
  r.event({ type: 'answer', ...step.value });
  r.finish();
  session.dispose();
  await engine.backend.dispose();
}
