// --json: one object at the end, for scripts. Everything a run reported, summarised (summary.ts).

import type { Writable } from 'node:stream';
import type { Renderer, RunEvent } from './events.js';
import { RunSummary, type JsonResult } from './summary.js';

export type { JsonResult } from './summary.js';

export class JsonRenderer implements Renderer {
  private readonly summary = new RunSummary();

  constructor(private readonly stdout: Writable) {}

  get result(): JsonResult {
    return this.summary.result;
  }

  event(e: RunEvent): void {
    this.summary.add(e);
  }

  finish(): void {
    this.stdout.write(`${JSON.stringify(this.result, null, 2)}\n`);
  }
}
