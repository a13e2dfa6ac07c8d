// Writes a document in the demo model's needle language (see src/demo/needle.ts).
//
//   node --import tsx scripts/make-demo-doc.ts --tokens 30000 --out fixtures/demo/people-30k.txt
//     [--depth 0.5] [--seed 1] [--facts 1] [--distractors 0]
//
// The document goes to --out (stdout without it). With --out, what it holds ({"question", "answer", "key",
// "value", "tokens", "depth", "needleIndex", "facts", "distractors", "seed"}; the question asks facts[0])
// goes to the same path with .json for .txt, and to stdout.

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
        facts: { type: 'string', default: '1' },
        distractors: { type: 'string', default: '0' },
        out: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    console.error(`make-demo-doc: ${(e as Error).message}`);
    return 2;
  }
  if (values.help) {
    console.log('usage: make-demo-doc.ts [--tokens N] [--depth 0..1] [--seed S] [--facts F] [--distractors D] [--out FILE]');
    return 0;
  }
  let doc;
  try {
    doc = makeNeedleDocument({
      tokens: Number(values.tokens),
      depth: Number(values.depth),
      seed: Number(values.seed),
      facts: Number(values.facts),
      distractors: Number(values.distractors),
    });
  } catch (e) {
    console.error(`make-demo-doc: ${(e as Error).message}`);
    return 2;
  }
  const { text, ...meta } = doc;
  if (values.out) {
    const held = JSON.stringify({ ...meta, seed: Number(values.seed) });
    writeFileSync(values.out, text);
    if (values.out.endsWith('.txt')) writeFileSync(values.out.slice(0, -4) + '.json', held + '\n');
    console.log(held);
  } else {
    process.stdout.write(text);
  }
  return 0;
}

process.exit(main());
