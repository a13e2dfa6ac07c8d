// A Rejection is an input that ctx looked at and will not read: binary, empty, undecodable, a PDF
// without text. What happens next depends on how the input was named:
//   - named on the command line → an error (the user asked for exactly this file);
//   - found by a directory walk or a glob → skipped, listed in Document.skipped with the reason.
// Readers throw Rejections; readInputs decides which of the two it becomes.

import { CtxError, type ExitKind } from '../errors.js';

/** Short groups for the "nothing to read" breakdown, e.g. "3 ignored, 1 binary". */
export type SkipCategory =
  | 'ignored'
  | 'binary'
  | 'empty'
  | 'too large'
  | 'undecodable'
  | 'not a valid PDF'
  | 'no text layer'
  | 'encrypted'
  | 'unreadable'
  | 'duplicate'
  | 'symlink loop'
  | 'outside the folder'
  | 'not a regular file';

export class Rejection extends Error {
  readonly category: SkipCategory;
  /** Exit kind when this input was named directly. */
  readonly exitKind: ExitKind;

  constructor(category: SkipCategory, reason: string, exitKind: ExitKind = 'input') {
    super(reason);
    this.name = 'Rejection';
    this.category = category;
    this.exitKind = exitKind;
  }

  /** The error a directly named input turns into: "<path>: <reason>". */
  toCtxError(path: string): CtxError {
    return new CtxError(this.exitKind, this.message, { path });
  }
}
