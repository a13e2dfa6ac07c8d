// Models ollama and LM Studio already hold: -m ollama:NAME[:TAG] and -m lms:PUBLISHER/MODEL resolve
// to the GGUF file in their folders (fixtures that mimic both layouts), ctx models list finds them,
// bad references fail with one clear line, and nothing in those folders is ever written.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';
import { CtxError } from '../../../src/errors.js';
import { GgufFile } from '../../../src/model/gguf/file.js';
import { GgufTextTokenizer } from '../../../src/model/gguf/tokenizer.js';
import { listLocalModels, resolveLocalModel } from '../../../src/model/local-models.js';
import { resolveModelDir } from '../../../src/model/resolve.js';
import { scratchPath } from './helpers.js';
import { smallBpe, vocabGguf } from './vocab.js';

const gguf = vocabGguf(smallBpe(20));
const bytes = readFileSync(gguf);
const digest = createHash('sha256').update(bytes).digest('hex');

/** A home folder with ollama's store and both LM Studio layouts. */
function fakeHome(): string {
  const home = scratchPath('home');
  const ollama = join(home, '.ollama', 'models');
  mkdirSync(join(ollama, 'blobs'), { recursive: true });
  copyFileSync(gguf, join(ollama, 'blobs', `sha256-${digest}`));
  const manifest = (layers: object[]) => JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', layers });
  const modelLayer = { mediaType: 'application/vnd.ollama.image.model', digest: `sha256:${digest}`, size: bytes.length };
  const template = { mediaType: 'application/vnd.ollama.image.template', digest: `sha256:${'1'.repeat(64)}`, size: 10 };
  const put = (rel: string, text: string) => {
    mkdirSync(join(ollama, 'manifests', rel, '..'), { recursive: true });
    writeFileSync(join(ollama, 'manifests', rel), text);
  };
  put('registry.ollama.ai/library/qwen2.5/1.5b', manifest([modelLayer, template]));
  put('registry.ollama.ai/library/qwen2.5/latest', manifest([modelLayer]));
  put('registry.ollama.ai/someone/tiny/q4', manifest([modelLayer]));
  put('registry.ollama.ai/library/embedonly/latest', manifest([template]));
  put('registry.ollama.ai/library/broken/latest', '{ not json');
  put('registry.ollama.ai/library/shrunk/latest', manifest([{ ...modelLayer, size: bytes.length + 1 }]));

  const lms = join(home, '.lmstudio', 'models');
  mkdirSync(join(lms, 'lmstudio-community', 'Qwen2.5-1.5B-Instruct-GGUF'), { recursive: true });
  copyFileSync(gguf, join(lms, 'lmstudio-community', 'Qwen2.5-1.5B-Instruct-GGUF', 'Qwen2.5-1.5B-Instruct-Q4_K_M.gguf'));
  mkdirSync(join(lms, 'bartowski', 'Llama-3.2-1B-Instruct-GGUF'), { recursive: true });
  for (const f of ['Llama-3.2-1B-Instruct-Q4_K_M.gguf', 'Llama-3.2-1B-Instruct-Q8_0.gguf', 'mmproj-model-f16.gguf']) copyFileSync(gguf, join(lms, 'bartowski', 'Llama-3.2-1B-Instruct-GGUF', f));
  const old = join(home, '.cache', 'lm-studio', 'models', 'TheBloke', 'old-GGUF');
  mkdirSync(old, { recursive: true });
  copyFileSync(gguf, join(old, 'old.Q4_0.gguf'));
  return home;
}

/** Every file under `dir` with its size and mtime: ctx must leave this unchanged. */
function snapshot(dir: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const s = statSync(p);
      if (s.isDirectory()) walk(p);
      else out.push(`${relative(dir, p)} ${s.size} ${s.mtimeMs}`);
    }
  };
  walk(dir);
  return out.join('\n');
}

function fails(f: () => unknown, kind: string, pattern: RegExp): void {
  assert.throws(f, (e: unknown) => e instanceof CtxError && e.kind === kind && pattern.test(e.message) && !e.message.includes('\n'));
}

describe('models held by ollama and LM Studio', () => {
  const home = fakeHome();
  const env = { HOME: home };
  const blob = join(home, '.ollama', 'models', 'blobs', `sha256-${digest}`);
  const before = snapshot(home);

  it('ollama:NAME[:TAG] resolves the manifest to its model blob', async () => {
    assert.equal(resolveLocalModel('ollama:qwen2.5:1.5b', env), blob);
    assert.equal(resolveLocalModel('ollama:qwen2.5', env), blob, 'the default tag is latest');
    assert.equal(resolveLocalModel('ollama:someone/tiny:q4', env), blob);
    assert.equal(resolveLocalModel('ollama:registry.ollama.ai/library/qwen2.5:1.5b', env), blob);
    // The blob has no .gguf extension; it opens as GGUF all the same, tokenizer included.
    const tok = new GgufTextTokenizer(await GgufFile.open(blob));
    assert.ok(tok.encode('hello').length > 0);
    assert.equal(await resolveModelDir('ollama:qwen2.5:1.5b', { env }), blob);
  });

  it('$OLLAMA_MODELS moves the store', () => {
    assert.equal(resolveLocalModel('ollama:qwen2.5:1.5b', { HOME: '/nonexistent', OLLAMA_MODELS: join(home, '.ollama', 'models') }), blob);
  });

  it('ollama failures say what is missing', () => {
    fails(() => resolveLocalModel('ollama:qwen2.5:7b', env), 'model', /ollama has no model "qwen2.5:7b" .*has tags 1.5b, latest of it; run "ollama pull qwen2.5:7b"/);
    fails(() => resolveLocalModel('ollama:../../etc/passwd', env), 'usage', /is not an ollama model name/);
    fails(() => resolveLocalModel('ollama:embedonly', env), 'model', /has 0 model layers/);
    fails(() => resolveLocalModel('ollama:broken', env), 'model', /manifest is not JSON/);
    fails(() => resolveLocalModel('ollama:shrunk', env), 'model', /blob has \d+ bytes but the manifest says/);
  });

  it('lms:PUBLISHER/MODEL resolves to the folder\'s GGUF file, or asks which one', () => {
    const lms = join(home, '.lmstudio', 'models');
    assert.equal(resolveLocalModel('lms:lmstudio-community/Qwen2.5-1.5B-Instruct-GGUF', env), join(lms, 'lmstudio-community', 'Qwen2.5-1.5B-Instruct-GGUF', 'Qwen2.5-1.5B-Instruct-Q4_K_M.gguf'));
    fails(() => resolveLocalModel('lms:bartowski/Llama-3.2-1B-Instruct-GGUF', env), 'model', /holds 2 GGUF files; name one: lms:bartowski\/Llama-3.2-1B-Instruct-GGUF\/Llama-3.2-1B-Instruct-Q4_K_M.gguf, /);
    assert.equal(resolveLocalModel('lms:bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q8_0.gguf', env), join(lms, 'bartowski', 'Llama-3.2-1B-Instruct-GGUF', 'Llama-3.2-1B-Instruct-Q8_0.gguf'));
    assert.equal(resolveLocalModel('lms:TheBloke/old-GGUF', env), join(home, '.cache', 'lm-studio', 'models', 'TheBloke', 'old-GGUF', 'old.Q4_0.gguf'), 'the older folder');
    fails(() => resolveLocalModel('lms:nobody/nothing', env), 'model', /LM Studio has no model nobody\/nothing/);
    fails(() => resolveLocalModel('lms:../x', env), 'usage', /is not an LM Studio model/);
    fails(() => resolveLocalModel('lms:a/b', { HOME: scratchPath('empty-home') }), 'model', /LM Studio's models folder was not found/);
  });

  it('a .gguf path is a model; a missing one or a split one is refused', async () => {
    assert.equal(await resolveModelDir(gguf, { env }), gguf);
    fails(() => resolveLocalModel(join(home, 'missing.gguf'), env), 'model', /GGUF file does not exist/);
    const split = scratchPath('model-00001-of-00002.gguf');
    copyFileSync(gguf, split);
    fails(() => resolveLocalModel(split, env), 'model', /split GGUF files .* are not supported/);
    assert.equal(resolveLocalModel('qwen2.5-1.5b-instruct', env), null, 'registry names are not GGUF references');
  });

  it('lists what both hold, marked by source', () => {
    const list = listLocalModels(env).map((m) => [m.source, m.ref, m.bytes]);
    assert.deepEqual(list, [
      ['ollama', 'ollama:qwen2.5:1.5b', bytes.length],
      ['ollama', 'ollama:qwen2.5:latest', bytes.length],
      ['ollama', 'ollama:someone/tiny:q4', bytes.length],
      ['lms', 'lms:bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M.gguf', bytes.length],
      ['lms', 'lms:bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q8_0.gguf', bytes.length],
      ['lms', 'lms:lmstudio-community/Qwen2.5-1.5B-Instruct-GGUF', bytes.length],
      ['lms', 'lms:TheBloke/old-GGUF', bytes.length],
    ]);
    assert.deepEqual(listLocalModels({ HOME: scratchPath('nothing-here') }), []);
  });

  it('never writes into their folders', () => {
    assert.equal(snapshot(home), before);
  });
});
