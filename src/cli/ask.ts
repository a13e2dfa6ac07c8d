// `ctx ask <inputs…> "<question>"`: read the document, answer one question, stream the answer.
//
// Citations (on unless --no-cite): the document gets source markers ([p. 12], [line 40],
// [src/x.ts:40]), the question asks for citations in that form, and the answer's citations are
// checked against the inputs once it is complete (engine/citations/source-marking.ts); --json then
// has "citations" (resolved to path, page or line) and "markers".

import { Command } from 'commander';
import { openDocument } from '../engine/open.js';
import type { Renderer } from '../ui/events.js';
import { pickRenderer, reporting } from '../ui/pick.js';
import { addEngineOptions, documentOptions, samplingOptions, type EngineCliOptions } from './engine-options.js';
import { inputsAndQuestion, type DocumentInputs, type RunContext } from './io.js';
import { citeOption, stdinWaitOption } from './options.js';

export interface AskOptions extends EngineCliOptions {
  /** Source markers in the document and checked citations in the answer (--no-cite turns it off). */
  cite: boolean;
}

export function askCommand(run: RunContext): Command {
  const cmd = new Command('ask')
    .description('read files, folders, a PDF or piped text, and answer a question about them')
    .argument('<inputs-and-question...>', 'inputs (files, folders, globs, - for stdin), then the question last')
    .addOption(citeOption())
    .addOption(stdinWaitOption());
  return addEngineOptions(cmd, { maxTokens: 512 }).action(async (args: string[], _o: unknown, c: Command) => {
    const o = c.optsWithGlobals<AskOptions>();
    const { question, ...inputs } = inputsAndQuestion(args, run);
    const r = pickRenderer(o, run);
    await reporting(r, () => ask(inputs, question, o, r, run));
  });
}

/** Opens the document (planned for this question), streams the answer to `r`, and closes it. */
export async function ask(inputs: DocumentInputs, question: string, o: AskOptions, r: Renderer, run: Pick<RunContext, 'stdin' | 'env' | 'signal'> & Partial<Pick<RunContext, 'stdinKind'>>): Promise<void> {
  const doc = await openDocument({ ...documentOptions(o, inputs, run, r), cite: o.cite, question });
  try {
    await doc.ask(question, { ...samplingOptions(o), signal: run.signal });
  } finally {
    await doc.close();
  }
  r.finish();
}
