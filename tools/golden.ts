// npm run golden -- <root> [--backend reference|cpu|cuda]
// Runs every golden case folder under <root>, one line per case, then "N passed, N failed" (plus
// ", N unsupported" when some cases are of a kind the engine does not run yet: those print
// "SKIP  <name>  unsupported kind <kind>" and are neither run nor counted as failures).
//
// Exit status: 0 every case ran and passed; 1 a case failed or could not be read, or <root> holds
// no case; 2 usage; 3 nothing failed but some cases were of an unsupported kind.
import { resolve } from 'node:path';
import { BACKENDS, type BackendName } from '../src/backend/index.js';
import { findGoldenCases, formatGoldenResult, loadGoldenCase, runGoldenCase, unsupportedReason } from '../src/engine/golden.js';

const args = process.argv.slice(2);
let backend: BackendName = 'reference';
const roots: string[] = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--backend') backend = args[++i] as BackendName;
  else if (args[i].startsWith('--backend=')) backend = args[i].slice(10) as BackendName;
  else roots.push(args[i]);
}
if (roots.length !== 1 || !BACKENDS.includes(backend)) {
  console.error(`usage: npm run golden -- <root> [--backend ${BACKENDS.join('|')}]`);
  process.exit(2);
}
const root = resolve(roots[0]);
const cases = findGoldenCases(root);
if (cases.length === 0) {
  console.error(`no golden cases (folders with case.json) under ${root}`);
  process.exit(1);
}
let passed = 0;
let failed = 0;
let unsupported = 0;
for (const dir of cases) {
  try {
    const gc = loadGoldenCase(dir);
    const why = unsupportedReason(gc);
    if (why) {
      console.log(`SKIP  ${gc.name}  ${why}`);
      unsupported++;
      continue;
    }
    const r = await runGoldenCase(root, dir, backend);
    console.log(formatGoldenResult(r));
    if (r.passed) passed++;
    else failed++;
  } catch (e) {
    console.log(`FAIL  ${dir}: ${(e as Error).message}`);
    failed++;
  }
}
console.log(`${passed} passed, ${failed} failed${unsupported ? `, ${unsupported} unsupported` : ''}`);
process.exit(failed > 0 ? 1 : unsupported > 0 ? 3 : 0);
