// Every failure a user can cause ends as a CtxError: one line naming the file (when there is one)
// and the cause, and a documented exit code. Anything else is a bug and exits with `internal`.
// The README's "Exit codes" table is generated from the same meanings; keep them in step.

export const EXIT = {
  ok: 0,
  internal: 1, // a bug in ctx: the message asks for --verbose and a report
  usage: 2, // bad flags or arguments
  input: 3, // an input is missing, unreadable, binary, corrupt or undecodable
  emptyInput: 4, // nothing left to read after ignore rules and skips
  model: 5, // the model folder or its files are missing or invalid
  download: 6, // a model download failed (network, checksum, disk)
  doesNotFit: 7, // the document does not fit the chosen strategy or memory; the message gives the numbers
  io: 8, // writing failed (disk full, permissions) — nothing half-written is left
  interrupted: 130, // Ctrl-C or SIGTERM
} as const;

export type ExitKind = keyof typeof EXIT;

export class CtxError extends Error {
  readonly kind: ExitKind;
  readonly path?: string;

  constructor(kind: ExitKind, message: string, options: { path?: string; cause?: unknown } = {}) {
    super(options.path ? `${options.path}: ${message}` : message, { cause: options.cause });
    this.name = 'CtxError';
    this.kind = kind;
    this.path = options.path;
  }

  get exitCode(): number {
    return EXIT[this.kind];
  }
}

export function isCtxError(e: unknown): e is CtxError {
  return e instanceof CtxError;
}

/** Turns a Node fs error into a CtxError of kind `input` with a short human cause. */
export function fsError(e: unknown, path: string, kind: ExitKind = 'input'): CtxError {
  const code = (e as NodeJS.ErrnoException)?.code;
  const cause =
    code === 'ENOENT' ? 'no such file or directory'
    : code === 'EACCES' || code === 'EPERM' ? 'permission denied'
    : code === 'EISDIR' ? 'is a directory'
    : code === 'ENOTDIR' ? 'a path component is not a directory'
    : code === 'ELOOP' ? 'too many levels of symbolic links'
    : code === 'ENOSPC' ? 'no space left on device'
    : code === 'EROFS' ? 'read-only file system'
    : code === 'EMFILE' ? 'too many open files'
    : (e as Error)?.message ?? String(e);
  return new CtxError(code === 'ENOSPC' || code === 'EROFS' ? 'io' : kind, cause, { path, cause: e });
}
