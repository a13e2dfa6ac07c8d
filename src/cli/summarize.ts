// `ctx summarize <inputs…>`: read the whole document and write a summary of it.

import { Command, Option } from 'commander';
import { pickRenderer } from '../ui/pick.js';
import { ask } from './ask.js';
import { addEngineOptions, type EngineCliOptions } from './engine-options.js';
import { currentRun, documentInputs } from './io.js';

export type SummaryLength = 'short' | 'medium' | 'long';

interface SummarizeOptions extends EngineCliOptions {
  length: SummaryLength;
  focus?: string;
  instruction?: string;
}

const LENGTHS: Record<SummaryLength, string> = {
  short: 'in three to five sentences',
  medium: 'in a few paragraphs',
  long: 'in detail, section by section',
};

/** The instruction given to the model after the document. */
export function summaryInstruction(o: { length: SummaryLength; focus?: string; instruction?: string }): string {
  if (o.instruction) return o.instruction;
  const focus = o.focus ? `, focusing on ${o.focus}` : '';
  return `Summarize the document above ${LENGTHS[o.length]}${focus}.`;
}

export function summarizeCommand(): Command {
  const cmd = new Command('summarize')
    .description('read files, folders, a PDF or piped text, and summarize all of it')
    .argument('[inputs...]', 'files, folders, globs, or - for stdin (piped input is read too)')
    .addOption(new Option('--length <size>', 'how long a summary').choices(['short', 'medium', 'long']).default('medium'))
    .addOption(new Option('--focus <topic>', 'what the summary should concentrate on'))
    .addOption(new Option('--instruction <text>', 'a custom instruction instead of the built-in one'));
  return addEngineOptions(cmd, { maxTokens: 768 }).action(async (inputs: string[], _o: unknown, c: Command) => {
    const run = currentRun();
    const o = c.optsWithGlobals<SummarizeOptions>();
    const { specs } = documentInputs(inputs, run);
    await ask(specs, summaryInstruction(o), o, pickRenderer(o, run), run.signal);
  });
}
