// Models people already have, through the CLI as a user runs it: `ctx ask report.pdf "…"` with
// -m path/to/model.gguf, -m ollama:NAME and -m lms:PUBLISHER/MODEL, on fixture GGUF files written here
// (a small random Qwen2 model in Q4_K_M's mix of Q4_K and Q6_K, with a BPE tokenizer and a chat
// template in its metadata) inside fake ollama and LM Studio folders; `ctx models list` finds them
// marked by source, `ctx models info` and `ctx inspect` read the file, and a bad reference is one line.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { EXIT } from '../../src/errors.js';
import { q4kmType } from '../../src/model/gguf/from-model.js';
import { inputFixtures, scratchDir } from '../helpers/fixtures.js';
import { wideModel, writeFixture } from '../model/gguf/helpers.js';
import { smallBpe } from '../model/gguf/vocab.js';
import { ctx } from './spawn-ctx.js';

const fx = inputFixtures();
const root = scratchDir('cli-gguf');
const home = join(root, 'home');
const cache = join(root, 'cache');

const base = wideModel('qwen2', { vocab: 384, maxPositions: 4096, seed: 12 });
const gguf = writeFixture(base, 'Q4_K', { typeOf: q4kmType(base.config), tokenizer: smallBpe(100, 'qwen2') });
const bytes = readFileSync(gguf);
const digest = createHash('sha256').update(bytes).digest('hex');

// ollama's store: a manifest whose model layer names the blob by digest.
const ollama = join(home, '.ollama', 'models');
mkdirSync(join(ollama, 'blobs'), { recursive: true });
copyFileSync(gguf, join(ollama, 'blobs', `sha256-${digest}`));
mkdirSync(join(ollama, 'manifests', 'registry.ollama.ai', 'library', 'tiny-qwen'), { recursive: true });
writeFileSync(
  join(ollama, 'manifests', 'registry.ollama.ai', 'library', 'tiny-qwen', 'q4_k_m'),
  JSON.stringify({
    schemaVersion: 2,
    layers: [
      { mediaType: 'application/vnd.ollama.image.model', digest: `sha256:${digest}`, size: bytes.length },
      { mediaType: 'application/vnd.ollama.image.template', digest: `sha256:${'2'.repeat(64)}`, size: 10 },
    ],
  }),
);
// LM Studio's models folder: publisher/model/file.gguf.
const lms = join(home, '.lmstudio', 'models', 'test-org', 'Tiny-Qwen-GGUF');
mkdirSync(lms, { recursive: true });
copyFileSync(gguf, join(lms, 'tiny-qwen-Q4_K_M.gguf'));

const env = { HOME: home, CTX_CACHE_DIR: cache };
const pdf = fx.path('pdf/three-pages.pdf');

function askJson(model: string, extra: string[] = []) {
  const r = ctx(['ask', pdf, 'What is this report about?', '-m', model, '--max-tokens', '5', '--json', ...extra], { env });
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as { backend: string; tokens: { document: number }; finishReason: string; answer?: string };
}

describe('GGUF models through the CLI', () => {
  it('ctx ask report.pdf "…" -m path/to/model.gguf', { skip: fx.skipPdf }, () => {
    const out = askJson(gguf);
    assert.equal(out.backend, 'cpu');
    assert.ok(out.tokens.document > 50, `the PDF was read: ${out.tokens.document} tokens`);
    assert.match(out.finishReason, /^(length|eos)$/);
  });

  it('ctx ask report.pdf "…" -m ollama:NAME:TAG reads ollama\'s blob in place, and writes nothing there', { skip: fx.skipPdf }, () => {
    const blob = join(ollama, 'blobs', `sha256-${digest}`);
    const before = statSync(blob).mtimeMs;
    const out = askJson('ollama:tiny-qwen:q4_k_m');
    assert.equal(out.backend, 'cpu');
    assert.ok(out.tokens.document > 50);
    assert.equal(statSync(blob).mtimeMs, before);
  });

  it('ctx ask -m lms:PUBLISHER/MODEL', { skip: fx.skipPdf }, () => {
    const out = askJson('lms:test-org/Tiny-Qwen-GGUF', ['--max-tokens', '2']);
    assert.equal(out.backend, 'cpu');
  });

  it('ctx models list shows what ollama and LM Studio hold, marked by source', () => {
    const r = ctx(['models', 'list'], { env });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ON THIS MACHINE \(-m NAME\)\s+SOURCE\s+SIZE\s+FILE/);
    assert.match(r.stdout, new RegExp(`ollama:tiny-qwen:q4_k_m\\s+ollama\\s+[\\d.]+ [KM]iB\\s+${ollama}/blobs/sha256-${digest}`));
    assert.match(r.stdout, /lms:test-org\/Tiny-Qwen-GGUF\s+LM Studio\s+[\d.]+ [KM]iB\s+.*tiny-qwen-Q4_K_M\.gguf/);
    const json = JSON.parse(ctx(['--json', 'models', 'list'], { env }).stdout);
    assert.deepEqual(
      json.local.map((m: { source: string; ref: string }) => [m.source, m.ref]),
      [['ollama', 'ollama:tiny-qwen:q4_k_m'], ['lms', 'lms:test-org/Tiny-Qwen-GGUF']],
    );
  });

  it('ctx models info and ctx inspect read the GGUF file (config, weights, tokenizer)', { skip: fx.skipPdf }, () => {
    const info = ctx(['models', 'info', 'ollama:tiny-qwen:q4_k_m'], { env });
    assert.equal(info.code, 0, info.stderr);
    assert.match(info.stdout, /^file:\s+.*sha256-/m);
    assert.match(info.stdout, /architecture: qwen2: 2 layers, hidden 256/);
    assert.match(info.stdout, /parameters:\s+[\d.]+M \(F32, Q4_K, Q6_K, [\d.]+ [KM]iB in 1 file\)/);
    assert.match(info.stdout, /tokenizer:\s+360 ids, BOS \d+, EOS \d+, chat template yes/);
    assert.doesNotMatch(info.stdout, /not read/);

    const inspect = ctx(['--json', 'inspect', pdf, '-m', gguf], { env });
    assert.equal(inspect.code, 0, inspect.stderr);
    const report = JSON.parse(inspect.stdout);
    assert.equal(report.tokens.method, 'tokenizer');
    assert.equal(report.model.nativeWindow, 4096);
  });

  it('bad references are one line with the model exit code', () => {
    const doc = fx.path('text/utf8.txt');
    const missing = ctx(['ask', doc, 'Q?', '-m', join(root, 'nope.gguf')], { env });
    assert.equal(missing.code, EXIT.model);
    assert.match(missing.stderr, /^ctx: .*nope\.gguf: GGUF file does not exist\n$/);
    const noTag = ctx(['ask', doc, 'Q?', '-m', 'ollama:tiny-qwen:latest'], { env });
    assert.equal(noTag.code, EXIT.model);
    assert.match(noTag.stderr, /^ctx: .*ollama has no model "tiny-qwen:latest" .*ollama has tags q4_k_m of it; run "ollama pull tiny-qwen:latest" or set OLLAMA_MODELS\n$/);
    const notGguf = join(root, 'not.gguf');
    writeFileSync(notGguf, 'hello');
    const bad = ctx(['ask', doc, 'Q?', '-m', notGguf], { env });
    assert.equal(bad.code, EXIT.model);
    assert.match(bad.stderr, /^ctx: .*not\.gguf: not a valid GGUF file: it does not start with "GGUF"\n$/);
    const dtype = ctx(['ask', doc, 'Q?', '-m', gguf, '--dtype', 'q8'], { env });
    assert.equal(dtype.code, EXIT.usage);
    assert.match(dtype.stderr, /--dtype q8 does not apply to a GGUF file/);
  });
});
