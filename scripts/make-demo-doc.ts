// Writes a document in the demo model's needle language (see src/demo/needle.ts).
//
//   node --import tsx scripts/make-demo-doc.ts --tokens 30000 --out fixtures/demo/needle-30k.txt
//     [--depth 0.5] [--seed 1]
//
// The document goes to --out (stdout without it). With --out, its facts ({"question", "answer", "key",
// "value", "tokens", "depth", "needleIndex", "seed"}) go to the same path with .json for .txt, and to stdout.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { makeNeedleDocument } from '../src/demo/needle.js';

function main(): number {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        tokens: { type: 'string', default: '30000' },
        depth: { type: 'string', default: '0.5' },
        seed: { type: 'string', default: '1' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    console.error(`make-demo-doc: ${(e as Error).message}`);
    return 2;
  }
  if (values.help) {
    console.log('usage: make-demo-doc.ts [--tokens N] [--depth 0..1] [--seed S] [--out FILE]');
    return 0;
  }
  let doc;
  try {
    doc = makeNeedleDocument({ tokens: Number(values.tokens), depth: Number(values.depth), seed: Number(values.seed) });
  } catch (e) {
    console.error(`make-demo-doc: ${(e as Error).message}`);
    return 2;
  }
  const { text, ...meta } = doc;
  if (values.out) {
    const facts = JSON.stringify({ ...meta, seed: Number(values.seed) });
    writeFileSync(values.out, text);
    if (values.out.endsWith('.txt')) writeFileSync(values.out.slice(0, -4) + '.json', facts + '\n');
    console.log(facts);
  } else {
    process.stdout.write(text);
  }
  return 0;
}

process.exit(main());
