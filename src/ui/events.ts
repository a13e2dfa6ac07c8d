// A renderer turns a run's events (engine/events.ts) into output: plain text, JSON, JSON Lines, or
// the Ink display. The CLI picks one per run (pick.ts) and hands it to the command explicitly.

import type { RunEvent } from '../engine/events.js';

export type { RunEvent } from '../engine/events.js';

export interface Renderer {
  event(e: RunEvent): void;
  /** Called once at the end of a successful run (JSON renderers print here). */
  finish(): void;
  /**
   * Called once when the run fails or is interrupted, before ctx prints its one-line error: the
   * Ink UI takes itself down, `--events` writes its `error` line. Events after it are ignored.
   */
  fail?(error: unknown): void;
}
