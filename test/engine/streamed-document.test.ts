// Issue 21.5 through the library: a document that is not held (text and ids read again from the
// inputs, stdin and a named pipe from their spool) gives the same plan, the same answer and the same
// cache entry as the same document held in memory.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { fixtureModel } from '../../scripts/make-fixture-models.js';
import { openDocument, type DocumentOptions, type RunEvent } from '../../src/index.js';
import { scratchDir } from '../helpers/fixtures.js';

const dir = scratchDir('streamed-doc');
const a = join(dir, 'a.txt');
const b = join(dir, 'b.txt');
writeFileSync(a, 'The fox jumps over the lazy dog. The answer is 42.\n'.repeat(12));
writeFileSync(b, 'Another file, with other words in it.\n'.repeat(9));
const piped = 'Piped text that arrives on stdin.\n'.repeat(5);

function options(events: RunEvent[], over: Partial<DocumentOptions>): DocumentOptions {
  return {
    inputs: [a, '-', b],
    stdin: Readable.from([piped]),
    model: fixtureModel('tiny'),
    backend: 'reference',
    strategy: { strategy: 'stream', sink: 4, recent: 60, chunk: 16 },
    maxTokens: 5,
    cache: false,
    env: { ...process.env, CTX_CACHE_DIR: join(dir, 'cache') },
    onEvent: (e) => events.push(e),
    ...over,
  };
}

async function answer(over: Partial<DocumentOptions>) {
  const events: RunEvent[] = [];
  const doc = await openDocument(options(events, over));
  try {
    const reply = await doc.ask('What is the answer?');
    const plan = events.find((e) => e.type === 'plan');
    const read = events.find((e) => e.type === 'read');
    const markers = events.find((e) => e.type === 'markers');
    return { answer: reply.answer, citations: reply.citations, plan, read, markers, sources: events.filter((e) => e.type === 'source'), tokenize: events.filter((e) => e.type === 'tokenize').at(-1) };
  } finally {
    await doc.close();
  }
}

describe('a document that is not held', () => {
  it('reads as a held one does: same sources, plan (source ends included) and answer', async () => {
    const held = await answer({});
    const streamed = await answer({ stdin: Readable.from([piped]), hold: { chars: 10, tokens: 10 } });
    assert.deepEqual(streamed.sources, held.sources);
    assert.deepEqual(streamed.plan, held.plan);
    assert.equal(streamed.answer, held.answer);
  });

  it('with citation markers: marked as it streams, the same markers, plan, answer and citations as held', async () => {
    const cited = { cite: true, strategy: { strategy: 'stream' as const, sink: 4, recent: 100, chunk: 16 } };
    const held = await answer(cited);
    const streamed = await answer({ ...cited, stdin: Readable.from([piped]), hold: { chars: 10, tokens: 10 } });
    // a.txt 12 lines, stdin 5, b.txt 9: "[path:1]" on each, named (several text sources).
    assert.deepEqual((held.markers as { count: number }).count, 3);
    assert.deepEqual(streamed.markers, held.markers);
    assert.deepEqual(streamed.plan, held.plan);
    assert.deepEqual(streamed.tokenize, held.tokenize);
    assert.equal(streamed.answer, held.answer);
    assert.deepEqual(streamed.citations, held.citations);
    const uncited = await answer({ strategy: cited.strategy });
    assert.ok((held.plan as { documentTokens: number }).documentTokens > (uncited.plan as { documentTokens: number }).documentTokens, 'the markers are read');
  });

  it('a named pipe is spooled to be read again, and the cache entry is the held document\'s', async () => {
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const write = () => spawn('sh', ['-c', `printf '${piped.replace(/\n/g, '\\n')}' > '${fifo}'`]);
    const cache = { maxBytes: 1 << 30 };
    write();
    const first = await answer({ inputs: [a, fifo], stdin: undefined, cache, hold: { chars: 10, tokens: 10 } });
    assert.equal((first.read as { cached: boolean }).cached, false);
    write();
    const second = await answer({ inputs: [a, fifo], stdin: undefined, cache });
    assert.equal((second.read as { cached: boolean }).cached, true, 'the held read finds the streamed read\'s entry');
    assert.equal(second.answer, first.answer);
    const spool = join(dir, 'cache', 'spool');
    assert.deepEqual(existsSync(spool) ? readdirSync(spool) : [], [], 'nothing spooled is left behind');
  });
});
