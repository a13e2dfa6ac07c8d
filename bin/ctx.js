#!/usr/bin/env node
// Launcher: the CLI is compiled to dist/ by `npm install` (prepare) or `npm run build`.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('ctx: not built yet — run `npm install` (or `npm run build`) in the ctx folder first\n');
  process.exit(1);
}
// `ctx models list | head -3`: the reader may leave while buffered output is still being flushed,
// after the run itself has finished; that is not an error (run() handles it while it runs).
process.stdout.on('error', (e) => {
  if (e.code !== 'EPIPE') throw e;
});
const { run } = await import(main.href);
const code = await run(process.argv);
// Interrupted: exit now rather than wait for abandoned work (a worker, a blocked read) to drain.
if (code === 130) process.exit(code);
process.exitCode = code;
