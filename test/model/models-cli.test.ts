// `ctx models list|pull|rm|info`, run through commander with captured output, against a test
// registry and the local hub server.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Command } from 'commander';
import { estimateParams, modelsCommand } from '../../src/cli/models.js';
import type { RunContext } from '../../src/cli/io.js';
import { CtxError } from '../../src/errors.js';
import { readModelConfig } from '../../src/model/config.js';
import { parseRegistry } from '../../src/model/registry.js';
import { openModel } from '../../src/model/model.js';
import { buildTinyTokenizer, writeTinyTokenizer } from '../../scripts/make-tiny-tokenizer.js';
import { sha256, startHubServer, type HubServer } from '../helpers/hub-server.js';
import { tinyModelDir } from '../helpers/models.js';

const root = mkdtempSync(join(tmpdir(), 'ctx-models-cli-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

const REPO = 'test-org/tiny-chat';
const { tokenizer, config: tokenizerConfig } = buildTinyTokenizer();
const FILES: Record<string, Buffer> = {
  'config.json': Buffer.from(
    JSON.stringify({
      model_type: 'llama',
      vocab_size: 300,
      hidden_size: 32,
      intermediate_size: 64,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      max_position_embeddings: 256,
      eos_token_id: 299,
    }),
  ),
  'tokenizer.json': Buffer.from(JSON.stringify(tokenizer)),
  'tokenizer_config.json': Buffer.from(JSON.stringify(tokenizerConfig)),
  'model.safetensors': Buffer.alloc(50_000, 3), // not real weights: `info` reports that, and goes on
};

function testRegistry() {
  const localDir = join(root, 'builtin');
  mkdirSync(localDir, { recursive: true });
  writeFileSync(join(localDir, 'config.json'), FILES['config.json']);
  return parseRegistry(
    {
      models: [
        {
          name: 'tiny-chat',
          hub: REPO,
          revision: 'b'.repeat(40),
          arch: 'llama',
          params: '0.1M',
          nativeWindow: 256,
          recommendedStrategy: 'select',
          license: 'test-license',
          files: Object.entries(FILES).map(([path, b]) => ({ path, size: b.length, sha256: sha256(b) })),
          notes: ['a test model'],
        },
        { name: 'gated-one', hub: 'meta/secret', revision: 'main', unpinned: 'no commit known (a test entry)', gated: true, recommendedStrategy: 'select', license: 'x', approxBytes: 2_000_000_000, files: [{ path: 'config.json', size: null, sha256: null }] },
        { name: 'builtin', local: 'builtin', arch: 'qwen2', recommendedStrategy: 'beacon', license: 'MIT' },
      ],
    },
    'test registry',
    root,
  );
}

/** Runs `ctx <args>` with the models command only; resolves to stdout, stderr and the error if any. */
async function ctx(args: string[], env: NodeJS.ProcessEnv): Promise<{ stdout: string; stderr: string; error?: unknown }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let outText = '';
  let errText = '';
  stdout.on('data', (d) => (outText += d));
  stderr.on('data', (d) => (errText += d));
  const run: RunContext = { stdout, stderr, stdin: new PassThrough(), stdinKind: 'other', signal: new AbortController().signal, env, exitCode: 0 };
  const program = new Command('ctx').option('--json').option('-q, --quiet').exitOverride();
  program.addCommand(modelsCommand(run, { registry: testRegistry }));
  for (const c of [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)]) c.exitOverride();
  let error: unknown;
  try {
    await program.parseAsync(['node', 'ctx', ...args]);
  } catch (e) {
    error = e;
  }
  await new Promise((r) => setImmediate(r));
  return { stdout: outText, stderr: errText, error };
}

describe('ctx models', () => {
  let hub: HubServer;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    hub = await startHubServer({ repos: { [REPO]: { revision: 'b'.repeat(40), files: FILES } } });
    env = { CTX_CACHE_DIR: join(root, 'cache'), CTX_HF_ENDPOINT: hub.url };
  });
  after(() => hub.close());

  it('list shows every entry, with sizes and status, as a table and as JSON', async () => {
    const { stdout, stderr } = await ctx(['models', 'list'], env);
    const lines = stdout.trim().split('\n');
    assert.match(lines[0], /^NAME\s+PARAMS\s+WINDOW\s+STRATEGY\s+SIZE\s+STATUS$/);
    assert.match(stdout, /tiny-chat\s+0\.1M\s+256\s+select\s+[\d.]+ KiB\s+not downloaded/);
    assert.match(stdout, /gated-one\s+\?\s+\?\s+select\s+~1\.9 GiB\s+not downloaded \(gated: needs HF_TOKEN\)/);
    assert.match(stdout, /builtin .*beacon .* built in/);
    assert.match(stderr, /Models are downloaded to .*cache\/models/);

    const json = JSON.parse((await ctx(['--json', 'models', 'list'], env)).stdout);
    assert.equal(json.models.length, 3);
    const tiny = json.models.find((m: { name: string }) => m.name === 'tiny-chat');
    assert.equal(tiny.available, false);
    assert.equal(tiny.downloadBytes, Object.values(FILES).reduce((n, b) => n + b.length, 0));
    assert.equal(tiny.downloadBytesExact, true);
  });

  it('pull downloads with progress lines on a non-terminal stderr and prints the folder', async () => {
    const { stdout, stderr, error } = await ctx(['models', 'pull', 'tiny-chat'], env);
    assert.equal(error, undefined);
    const dir = join(root, 'cache', 'models', 'tiny-chat');
    assert.equal(stdout.trim(), dir);
    assert.ok(!/not pinned/.test(stderr), 'a pinned entry downloads without the unpinned note');
    assert.match(stderr, /ctx: downloading model\.safetensors \(4\/4, 48\.8 KiB\)/);
    assert.ok(!stderr.includes('\r'), 'no terminal redraws in a log');

    const again = await ctx(['models', 'pull', 'tiny-chat'], env);
    assert.equal(again.stdout.trim(), dir);
    assert.match(again.stderr, /already downloaded/);

    const listed = await ctx(['models', 'list'], env);
    assert.match(listed.stdout, /tiny-chat .* downloaded/);
    assert.ok(!/tiny-chat .* not downloaded/.test(listed.stdout));
  });

  it('pull of an unknown name is a usage error naming the known ones', async () => {
    const { error } = await ctx(['models', 'pull', 'nope'], env);
    assert.ok(error instanceof CtxError && error.kind === 'usage');
    assert.match(error.message, /unknown model "nope" \(known: tiny-chat, gated-one, builtin\)/);
  });

  it('info describes a downloaded model, and says what it could not read', async () => {
    await ctx(['models', 'pull', 'tiny-chat'], env);
    const { stdout } = await ctx(['models', 'info', 'tiny-chat'], env);
    assert.match(stdout, /^model:\s+tiny-chat$/m);
    assert.match(stdout, /^hub:\s+test-org\/tiny-chat @ b{40}$/m);
    assert.match(stdout, /^architecture:\s+llama: 2 layers, hidden 32, MLP 64$/m);
    assert.match(stdout, /^attention:\s+4 query heads, 2 key\/value heads, head dim 8$/m);
    assert.match(stdout, /^window:\s+256 tokens/m);
    assert.match(stdout, /^tokenizer:\s+300 ids, BOS 296 \(added\), EOS 299, chat template yes$/m);
    assert.match(stdout, /^not read:\s+weights: /m, 'the fixture weights are not a safetensors file');
    assert.match(stdout, /^note:\s+a test model$/m);

    const json = JSON.parse((await ctx(['--json', 'models', 'info', 'tiny-chat'], env)).stdout);
    assert.equal(json.config.numLayers, 2);
    assert.equal(json.tokenizer.eosIds[0], 299);
  });

  it('info on a registry model that is not downloaded still describes it from the registry', async () => {
    const { stdout } = await ctx(['models', 'info', 'gated-one'], env);
    assert.match(stdout, /^hub:\s+meta\/secret @ main \(not pinned: checksums unknown\)$/m);
    assert.match(stdout, /^not read:\s+"gated-one" is not downloaded yet: run "ctx models pull gated-one"/m);
  });

  it('info on a folder: a random beacon model, with exact parameters and beacon settings', async () => {
    const dir = tinyModelDir('tiny-beacon');
    writeTinyTokenizer(dir);
    const { stdout } = await ctx(['models', 'info', dir], env);
    assert.match(stdout, /^beacon:\s+v3 \(interleave, full-coverage\), window 32, stride 32, ratios 2\/4\/8 \(adapt-64\), projections qkv$/m);
    assert.match(stdout, /^strategy:\s+beacon recommended$/m);
    assert.match(stdout, /^parameters:\s+[\d.]+K \(F32, [\d.]+ KiB in 1 file\)$/m);
  });

  it('info on a folder: a softplus-attention model says so', async () => {
    const dir = tinyModelDir('tiny', { softplus: { scale: 'log_head_dim_x_log_n', reweight: { p: 15, offset: 1, noOffsetFirstRows: 3 } } });
    writeTinyTokenizer(dir);
    const { stdout } = await ctx(['models', 'info', dir], env);
    assert.match(stdout, /^softplus:\s+softplus attention \(LSSAR p=15\) instead of softmax \(runs on cpu and reference, not cuda\)$/m);
    const json = JSON.parse((await ctx(['--json', 'models', 'info', dir], env)).stdout);
    assert.deepEqual(json.config.softplus, { scale: 'log_head_dim_x_log_n', reweight: { p: 15, offset: 1, noOffsetFirstRows: 3 } });
    assert.doesNotMatch((await ctx(['models', 'info', tinyModelDir('tiny')], env)).stdout, /softplus/);
  });

  it('rm deletes a download; a built-in model cannot be removed', async () => {
    await ctx(['models', 'pull', 'tiny-chat'], env);
    const { stdout } = await ctx(['models', 'rm', 'tiny-chat'], env);
    assert.match(stdout, /^removed tiny-chat \([\d.]+ KiB\)$/m);
    assert.match((await ctx(['models', 'rm', 'tiny-chat'], env)).stdout, /tiny-chat is not downloaded/);
    const { error } = await ctx(['models', 'rm', 'builtin'], env);
    assert.ok(error instanceof CtxError && /ships with ctx and cannot be removed/.test(error.message));
  });
});

describe('estimateParams', () => {
  it('equals the tensor count of the weights for plain, beacon v3 and beacon v1 models', () => {
    for (const preset of ['tiny', 'tiny-beacon', 'tiny-beacon-v1']) {
      const dir = tinyModelDir(preset);
      const model = openModel(dir);
      let params = 0;
      for (const name of model.weights.names()) params += model.weights.info(name).shape.reduce((a, b) => a * b, 1);
      assert.equal(estimateParams(readModelConfig(dir)), params, preset);
    }
  });
});
