// Which renderer a run uses: JSON when asked, plain text otherwise (the Ink UI joins here).

import type { RunContext } from '../cli/io.js';
import type { Renderer } from './events.js';
import { JsonRenderer } from './json.js';
import { PlainRenderer } from './plain.js';

export interface RenderChoice {
  json?: boolean;
  quiet?: boolean;
  stream: boolean;
}

export function pickRenderer(o: RenderChoice, run: Pick<RunContext, 'stdout' | 'stderr'>): Renderer {
  if (o.json) return new JsonRenderer(run.stdout);
  const stderrIsTTY = Boolean((run.stderr as { isTTY?: boolean }).isTTY);
  return new PlainRenderer({ stdout: run.stdout, stderr: run.stderr, stderrIsTTY, quiet: Boolean(o.quiet), stream: o.stream });
}
