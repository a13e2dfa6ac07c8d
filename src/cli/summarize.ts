// `ctx summarize <inputs…>`: a summary of all of the inputs, in one of two modes (engine/summarize/):
//
//   one-pass      the whole document read into one session (full, beacon or select), then the
//                 summary generated from it;
//   hierarchical  sections that fit the model's window summarised one by one, then combined along the
//                 document's structure (files → folders → the whole; page ranges → the whole).
//
// --mode auto (the default) picks one and says why: a "summary mode" note with the plan, and
// "summary": {mode, reason, …} in --json. Hierarchical progress comes as `section` events. Citations
// work as in `ctx ask`: markers in the document, checked citations in the summary.

import { Command, InvalidArgumentError, Option } from 'commander';
import type { ModeRequest } from '../engine/summarize/mode.js';
import type { SummaryLength } from '../engine/summarize/prompts.js';
import { summarizeDocument } from '../engine/summarize/summarize.js';
import type { Renderer } from '../ui/events.js';
import { pickRenderer, reporting } from '../ui/pick.js';
import { addEngineOptions, documentOptions, samplingOptions, type EngineCliOptions } from './engine-options.js';
import { documentInputs, usageWhenNothingToRead, type DocumentInputs, type RunContext } from './io.js';
import { citeOption, stdinWaitOption } from './options.js';

export type { SummaryLength } from '../engine/summarize/prompts.js';

export interface SummarizeOptions extends EngineCliOptions {
  /** Source markers in the document and checked citations in the summary (--no-cite turns it off). */
  cite: boolean;
  length: SummaryLength;
  focus?: string;
  instruction?: string;
  mode: ModeRequest;
  /** Largest section in tokens (hierarchical), below what the window allows. */
  sectionTokens?: number;
}

const positiveInt = (text: string) => {
  const v = Number(text);
  if (!Number.isInteger(v) || v < 1) throw new InvalidArgumentError('expected an integer ≥ 1');
  return v;
};

export function summarizeCommand(run: RunContext): Command {
  const cmd = new Command('summarize')
    .description('read files, folders, a PDF or piped text, and summarize all of it')
    .argument('[inputs...]', 'files, folders, globs, or - for stdin (with none named, piped input is read)')
    .addOption(new Option('--length <size>', 'how long a summary').choices(['short', 'medium', 'long']).default('medium'))
    .addOption(new Option('--focus <topic>', 'what the summary should concentrate on'))
    .addOption(new Option('--instruction <text>', 'a custom instruction instead of the built-in one'))
    .addOption(
      new Option('--mode <mode>', 'one-pass: read it all, then summarize; hierarchical: summarize sections, then combine; auto: choose')
        .choices(['auto', 'one-pass', 'hierarchical'])
        .default('auto'),
    )
    .addOption(new Option('--section-tokens <n>', 'hierarchical: largest section in tokens (default: what the window allows)').argParser(positiveInt))
    .addOption(citeOption())
    .addOption(stdinWaitOption());
  return addEngineOptions(cmd, { maxTokens: 768 }).action(async (inputs: string[], _o: unknown, c: Command) => {
    const o = c.optsWithGlobals<SummarizeOptions>();
    usageWhenNothingToRead(c, inputs, run);
    const specs = documentInputs(inputs, run);
    const r = pickRenderer(o, run);
    await reporting(r, () => summarize(specs, o, r, run));
  });
}

/** Summarizes the inputs, streaming the summary and every event to `r`. */
export async function summarize(inputs: DocumentInputs, o: SummarizeOptions, r: Renderer, run: Pick<RunContext, 'stdin' | 'env' | 'signal'> & Partial<Pick<RunContext, 'stdinKind'>>): Promise<void> {
  await summarizeDocument({
    ...documentOptions(o, inputs, run, r),
    ...samplingOptions(o),
    cite: o.cite,
    length: o.length,
    focus: o.focus,
    instruction: o.instruction,
    mode: o.mode,
    sectionTokens: o.sectionTokens,
  });
  r.finish();
}
