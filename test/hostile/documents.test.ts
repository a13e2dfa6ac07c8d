// Hostile documents (issue 21.2, 21.5, 21.6, 21.7, 21.9, 21.11): links out of a folder, pipes with no
// writer, very large inputs, files that change while read, PDF decompression bombs and garbage PDFs.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readlinkSync, symlinkSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { deflateSync } from 'node:zlib';
import { writeTinyTokenizer } from '../../scripts/make-tiny-tokenizer.js';
import type { Segment } from '../../src/input/document.js';
import { PdfReader } from '../../src/input/pdf.js';
import { readInputs } from '../../src/input/read.js';
import { Rejection } from '../../src/input/rejection.js';
import { loadTokenizer } from '../../src/model/tokenizer.js';
import { scratchDir } from '../helpers/fixtures.js';
import { ctxLimited, withinLimits } from './limits.js';

const LIMITS = { timeoutMs: 20_000, maxRssMb: 400 };

function readlinkSafe(path: string): string | null {
  try {
    return readlinkSync(path);
  } catch {
    return null;
  }
}

describe('symbolic links that leave the folder', () => {
  function project(): { root: string; outside: string } {
    const base = scratchDir('links');
    const outside = join(base, 'outside');
    mkdirSync(join(outside, 'secrets'), { recursive: true });
    writeFileSync(join(outside, 'secrets', 'shadow'), 'root:$6$not-for-ctx\n');
    writeFileSync(join(outside, 'passwd'), 'root:x:0:0\n');
    const root = join(base, 'project');
    mkdirSync(join(root, 'docs'), { recursive: true });
    writeFileSync(join(root, 'README.md'), '# project\n');
    writeFileSync(join(root, 'docs', 'guide.md'), 'a guide\n');
    symlinkSync(join(outside, 'secrets'), join(root, 'etc')); // a folder outside
    symlinkSync(join(outside, 'passwd'), join(root, 'pw')); // a file outside
    symlinkSync(join(root, 'docs'), join(root, 'docs-link')); // inside: still followed
    return { root, outside };
  }

  it('are skipped with the reason, links inside the folder still followed', async () => {
    const { root, outside } = project();
    const r = withinLimits(await ctxLimited(['inspect', root, '--json'], LIMITS, { env: { CTX_CACHE_DIR: scratchDir('cache') } }), LIMITS);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    const read = report.sources.map((s: { path: string }) => s.path);
    assert.ok(read.every((p: string) => !p.includes('etc') && !p.endsWith('/pw')), `read outside the folder: ${read}`);
    const skipped = Object.fromEntries(report.skipped.map((s: { path: string; reason: string }) => [s.path.slice(root.length + 1), s.reason]));
    assert.match(skipped['etc/'], new RegExp(`is a symbolic link to ${join(outside, 'secrets')}, outside .*--follow-links`));
    assert.match(skipped.pw, /is a symbolic link to .*passwd, outside/);
    assert.match(skipped['docs-link/'] ?? '', /same folder as/, 'the inside link is followed (and found to be a duplicate)');
  });

  it('are read with --follow-links', async () => {
    const { root } = project();
    const r = withinLimits(await ctxLimited(['inspect', root, '--json', '--follow-links'], LIMITS, { env: { CTX_CACHE_DIR: scratchDir('cache') } }), LIMITS);
    assert.equal(r.code, 0, r.stderr);
    const read = JSON.parse(r.stdout).sources.map((s: { path: string }) => s.path.slice(root.length + 1));
    assert.ok(read.includes('etc/shadow') && read.includes('pw'), String(read));
  });
});

describe('pipes', () => {
  it('a named pipe with no writer: Ctrl-C exits 130 within a second', async () => {
    const fifo = join(scratchDir('fifo'), 'pipe');
    execFileSync('mkfifo', [fifo]);
    const r = withinLimits(await ctxLimited(['inspect', fifo], LIMITS, { interruptAfterMs: 1500, env: { CTX_CACHE_DIR: scratchDir('cache') } }), LIMITS);
    assert.equal(r.code, 130, r.stderr);
    assert.ok(r.exitAfterSignalMs! < 1000, `exited ${r.exitAfterSignalMs} ms after Ctrl-C`);
  });

  it('the read itself stops on the abort signal (no thread is left blocked in open)', async () => {
    const fifo = join(scratchDir('fifo'), 'pipe');
    execFileSync('mkfifo', [fifo]);
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('stop')), 200);
    const t0 = performance.now();
    await assert.rejects(readInputs([fifo], { signal: ac.signal }), /stop/);
    assert.ok(performance.now() - t0 < 1500);
  });

  it('a named pipe that nobody writes to ends after --stdin-wait with one line naming it (exit 3)', async () => {
    const fifo = join(scratchDir('fifo'), 'pipe');
    execFileSync('mkfifo', [fifo]);
    const r = withinLimits(await ctxLimited(['inspect', '--stdin-wait', '1', fifo], LIMITS, { env: { CTX_CACHE_DIR: scratchDir('cache') } }), LIMITS);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stderr.trim(), `ctx: ${fifo}: nothing arrived in 1 s: nothing writes to this pipe (--stdin-wait sets how long to wait, 0 = forever)`);
    assert.ok(r.ms < 10_000);
  });

  it('a named pipe with a late writer is read', async () => {
    const fifo = join(scratchDir('fifo'), 'pipe');
    execFileSync('mkfifo', [fifo]);
    spawn('sh', ['-c', `sleep 0.2; printf 'late text\\n' > '${fifo}'`]);
    const doc = await readInputs([fifo]);
    assert.equal(doc.segments.map((s) => s.text).join(''), 'late text\n');
  });
});

describe('very large inputs (issue 21.5)', () => {
  // 200 MB of text: ctx held all of it before (about 350 MB peak for inspect, 1.65 GB at 1 GB; with
  // citation markers, on by default, 590 MB at 200 MB); it now streams, markers too, holding the
  // pieces in flight (about 145 MB here with markers, 110 MB without, the same at 1 GB).
  const BIG = { timeoutMs: 120_000, maxRssMb: 200 };
  const big = join(scratchDir('big'), 'big.txt');
  const line = Buffer.from('The quick brown fox jumps over the lazy dog; a line of text for ctx to read.\n');
  const fd = openSync(big, 'w');
  const block = Buffer.concat(Array.from({ length: Math.floor((1 << 20) / line.length) }, () => line));
  for (let written = 0; written < 200 * 1024 * 1024; written += block.length) writeSync(fd, block);
  closeSync(fd);
  const lines = Math.ceil((200 * 1024 * 1024) / block.length) * Math.floor((1 << 20) / line.length);

  it('inspect reads 200 MB with a bounded peak memory, citation markers included (the default)', { timeout: BIG.timeoutMs + 5_000 }, async () => {
    const r = withinLimits(await ctxLimited(['inspect', big], BIG, { env: { CTX_CACHE_DIR: scratchDir('cache') } }), BIG);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /big\.txt\s+text\s+20\d MiB\s+~5\d,\d{3},\d{3} tokens/);
    // "[line N]" on line 1 and every 25th: counted as they stream past.
    const markers = 1 + Math.floor(lines / 25);
    assert.match(r.stdout, new RegExp(`including ${markers.toLocaleString('en-US')} citation markers \\(\\[line N\\]\\)`));
  });

  it('so does 100 MB piped into stdin (`yes … | ctx inspect` ran out of heap), spooled to be marked', { timeout: BIG.timeoutMs + 5_000 }, async () => {
    const input = line.toString().repeat(Math.floor((100 * 1024 * 1024) / line.length));
    const cache = scratchDir('cache');
    // Spooled and read twice: about 195 MB here (the first reading keeps 16 Mi characters); held, 330 MB.
    const limits = { ...BIG, maxRssMb: 260 };
    const r = withinLimits(await ctxLimited(['inspect'], limits, { input, env: { CTX_CACHE_DIR: cache } }), limits);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /- \(stdin\)\s+stdin\s+100 MiB/);
    assert.match(r.stdout, /citation markers \(\[line N\]\)/);
    assert.deepEqual(readdirSync(join(cache, 'spool')), [], 'the spool is unlinked');
  });

  it('--no-cite reads once, holding and spooling nothing', { timeout: BIG.timeoutMs + 5_000 }, async () => {
    const input = line.toString().repeat(Math.floor((100 * 1024 * 1024) / line.length));
    const r = withinLimits(await ctxLimited(['inspect', '--no-cite'], BIG, { input, env: { CTX_CACHE_DIR: scratchDir('cache') } }), BIG);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /- \(stdin\)\s+stdin\s+100 MiB/);
  });
});

describe('the tokenizer\'s memos as a long document streams past (issue 21.5)', () => {
  // The tiny test tokenizer (GPT-2's pre-tokenizer) keeps digit runs together, so each citation
  // marker's line number is a new word that its memos remember. Their keys were views into the
  // text they were cut from, which kept every 1 MiB segment alive until a memo filled: inspect -m tiny
  // with markers peaked at 698 MB for 200 MB of text and grew with the document (1.8 GB at 1 GB).
  it('keep none of the text: 12 MiB with a marker every 25 lines leaves under 10 MB on the heap (its memos: about 6 MB; main: 18 MB, growing with the text)', { timeout: 180_000 }, async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const dir = join(scratchDir('memo-tok'), 'tiny');
    writeTinyTokenizer(dir);
    const tok = await loadTokenizer(dir);
    const words = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'and', 'reads', 'a', 'line'];
    let line = 0;
    function* segments(): Generator<Segment> {
      for (let s = 0; s < 12; s++) {
        let text = '';
        while (text.length < 1 << 20) {
          line++;
          // The marker ctx puts at the start of every 25th line (citations/markers.ts).
          if (line % 25 === 1) text += `[line ${line}] `;
          for (let w = 0; w < 12; w++) text += `${w ? ' ' : ''}${words[(line * 7 + w * 3) % words.length]}`;
          text += '.\n';
        }
        yield { text, source: { path: 'big.txt' } };
      }
    }
    gc();
    const before = process.memoryUsage().heapUsed;
    let tokens = 0;
    for await (const { ids } of tok.encodeSegmentStream(segments(), { workers: 0 })) tokens += ids.length;
    gc();
    const held = process.memoryUsage().heapUsed - before;
    assert.ok(tokens > 4_000_000, `${tokens} tokens`);
    assert.ok(held < 10e6, `${(held / 1e6).toFixed(1)} MB still held after ${line} lines (${Math.floor(line / 25)} markers)`);
  });
});

describe('a file that changes while it is read', () => {
  it('warns like tar ("file changed as we read it")', { skip: existsSync('/proc/self/fd') ? false : 'needs /proc' }, async () => {
    const path = join(scratchDir('changing'), 'log.txt');
    writeFileSync(path, 'a line of log text that repeats\n'.repeat(1_000_000)); // 32 MB
    const warnings: string[] = [];
    const reading = readInputs([path], { warn: (m) => warnings.push(m) });
    // Truncate it once ctx has it open (seen in /proc/self/fd), so the read is surely under way.
    while (!readdirSync('/proc/self/fd').some((fd) => readlinkSafe(`/proc/self/fd/${fd}`) === path)) await new Promise((r) => setImmediate(r));
    truncateSync(path, 1000);
    await reading;
    assert.equal(warnings.length, 1, String(warnings));
    assert.match(warnings[0]!, /log\.txt: file changed as we read it \(32000000 → 1000 bytes/);
  });

  it('an unchanged file gives no warning', async () => {
    const path = join(scratchDir('still'), 'a.txt');
    writeFileSync(path, 'steady\n');
    const warnings: string[] = [];
    await readInputs([path], { warn: (m) => warnings.push(m) });
    assert.deepEqual(warnings, []);
  });
});

/** A one-page PDF whose content stream inflates to `inflated` bytes of spaces. */
function bombPdf(inflated: number): Buffer {
  const stream = deflateSync(Buffer.alloc(inflated, 0x20), { level: 9 });
  const parts: Buffer[] = [];
  const offsets: number[] = [];
  let at = 0;
  const add = (b: Buffer | string) => {
    const buf = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
    parts.push(buf);
    at += buf.length;
  };
  add('%PDF-1.4\n');
  const obj = (n: number, body: string | Buffer[]) => {
    offsets[n] = at;
    add(`${n} 0 obj\n`);
    if (typeof body === 'string') add(body);
    else for (const b of body) add(b);
    add('\nendobj\n');
  };
  obj(1, '<< /Type /Catalog /Pages 2 0 R >>');
  obj(2, '<< /Type /Pages /Kids [3 0 R] /Count 1 >>');
  obj(3, '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>');
  obj(4, [Buffer.from(`<< /Length ${stream.length} /Filter /FlateDecode >>\nstream\n`, 'latin1'), stream, Buffer.from('\nendstream', 'latin1')]);
  const xref = at;
  add(`xref\n0 5\n0000000000 65535 f \n${offsets.slice(1).map((o) => `${String(o).padStart(10, '0')} 00000 n \n`).join('')}`);
  add(`trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`);
  return Buffer.concat(parts);
}

let bombBytes: Buffer | null = null;
/** 400 MB of spaces in a 400 KB PDF, made once. */
function bomb(): Buffer {
  bombBytes ??= bombPdf(400 * 1024 * 1024);
  return bombBytes;
}

describe('PDF decompression bombs', () => {
  it('are stopped at the memory limit with a clear reason', { timeout: 60_000 }, async () => {
    const path = join(scratchDir('bomb'), 'bomb.pdf');
    writeFileSync(path, bomb());
    const reader = new PdfReader({ maxMemoryBytes: 100 * 1024 * 1024 });
    const t0 = performance.now();
    try {
      await assert.rejects(reader.read({ path }, 'bomb.pdf'), (e: unknown) => {
        assert.ok(e instanceof Rejection, String(e));
        assert.match(e.message, /needed more than 100 MiB of memory to parse .*decompression bomb/);
        return true;
      });
    } finally {
      await reader.close();
    }
    assert.ok(performance.now() - t0 < 30_000);
  });

  it('a page that takes too long is stopped at the page limit', { timeout: 60_000 }, async () => {
    const path = join(scratchDir('slow'), 'slow.pdf');
    writeFileSync(path, bomb());
    const reader = new PdfReader({ pageTimeoutMs: 200 });
    try {
      await assert.rejects(reader.read({ path }, 'slow.pdf'), /page 1 took more than 200 ms to parse/);
    } finally {
      await reader.close();
    }
  });

  it('garbage named .pdf is one line naming the file and the cause', async () => {
    const path = join(scratchDir('garbage'), 'report.pdf');
    writeFileSync(path, Buffer.concat([Buffer.from('%PDF-1.7\n'), Buffer.alloc(200_000, 0xab)]));
    const r = withinLimits(await ctxLimited(['inspect', path], LIMITS, { env: { CTX_CACHE_DIR: scratchDir('cache') } }), LIMITS);
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /^ctx: .*report\.pdf: is not a valid PDF/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
  });
});
