// The bench scripts' command line: `--name value` options and bare `--name` flags, after the script.
export const benchArgs = process.argv.slice(2);

/** The value after `--name`, or `fallback` when the option is absent. */
export function option(name: string, fallback: string): string {
  const i = benchArgs.indexOf(`--${name}`);
  return i >= 0 ? benchArgs[i + 1] : fallback;
}

/** Whether the bare flag `--name` was given. */
export function flag(name: string): boolean {
  return benchArgs.includes(`--${name}`);
}
