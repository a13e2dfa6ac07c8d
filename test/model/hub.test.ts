// Downloads against a local server with the hub's URL layout (test/helpers/hub-server.ts): full pull,
// redirects and tokens, resume after a dropped connection, a server that ignores Range, checksum and
// size mismatches, 404s, an unreachable hub, interruption, and what each leaves on disk.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { CtxError } from '../../src/errors.js';
import { fileUrl, hubEndpoint, MARKER, pullModel, readDownloadRecord, removeDownload, type PullOptions, type PullProgress } from '../../src/model/hub.js';
import { parseRegistry, type HubEntry } from '../../src/model/registry.js';
import { resolveModelDir } from '../../src/model/resolve.js';
import { buildTinyTokenizer } from '../../scripts/make-tiny-tokenizer.js';
import { sha256, startHubServer, type HubServer } from '../helpers/hub-server.js';

const root = mkdtempSync(join(tmpdir(), 'ctx-hub-test-'));
after(() => rmSync(root, { recursive: true, force: true }));

const REPO = 'test-org/tiny-model';
const REVISION = 'a'.repeat(40);

/** Deterministic bytes that are not all alike, so a wrong offset on resume changes the hash. */
function pseudoRandom(n: number, seed = 1): Buffer {
  const b = Buffer.alloc(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    b[i] = s >>> 24;
  }
  return b;
}

function fixtureFiles(): Record<string, Buffer> {
  const { tokenizer, config } = buildTinyTokenizer();
  const modelConfig = {
    model_type: 'qwen2',
    architectures: ['Qwen2ForCausalLM'],
    vocab_size: 300,
    hidden_size: 64,
    intermediate_size: 128,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    max_position_embeddings: 512,
    rope_theta: 10000,
    rms_norm_eps: 1e-6,
    tie_word_embeddings: true,
    bos_token_id: 296,
    eos_token_id: 299,
  };
  return {
    'config.json': Buffer.from(JSON.stringify(modelConfig)),
    'tokenizer.json': Buffer.from(JSON.stringify(tokenizer)),
    'tokenizer_config.json': Buffer.from(JSON.stringify(config)),
    'model.safetensors': pseudoRandom(300_000),
  };
}

const FILES = fixtureFiles();

/** A registry with one hub entry for the fixture; `files` overrides what the registry says of each file. */
function registry(overrides: { name?: string; gated?: boolean; files?: Array<Record<string, unknown>> } = {}) {
  const files =
    overrides.files ??
    [
      ...Object.entries(FILES).map(([path, body]) => ({ path, size: body.length, sha256: sha256(body) })),
      { path: 'generation_config.json', size: null, sha256: null, optional: true },
    ];
  return parseRegistry(
    {
      models: [
        {
          name: overrides.name ?? 'tiny',
          hub: REPO,
          revision: REVISION,
          gated: overrides.gated,
          arch: 'qwen2',
          params: '0.1M',
          nativeWindow: 512,
          recommendedStrategy: 'select',
          license: 'test',
          files,
        },
      ],
    },
    'test registry',
    root,
  );
}

function entryOf(reg: ReturnType<typeof registry>): HubEntry {
  return reg.entries[0] as HubEntry;
}

let caseNo = 0;
/** A fresh, empty cache folder and the environment that points ctx at it and at the server. */
function freshEnv(server: { url: string } | null, extra: NodeJS.ProcessEnv = {}) {
  const cacheDir = join(root, `cache${caseNo++}`);
  const env: NodeJS.ProcessEnv = { CTX_CACHE_DIR: cacheDir, CTX_HF_ENDPOINT: server?.url ?? 'http://127.0.0.1:9', ...extra };
  return { cacheDir, modelsDir: join(cacheDir, 'models'), env };
}

/** Pull options for tests: a stalled connection fails in seconds, not the default minute. */
function pullOpts(env: NodeJS.ProcessEnv, more: Partial<PullOptions> = {}): PullOptions {
  return { env, idleTimeoutMs: 5000, ...more };
}

/** Everything under the models folder, so tests can say exactly what a failure left behind. */
function listing(modelsDir: string): string[] {
  if (!existsSync(modelsDir)) return [];
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const n of readdirSync(d).sort()) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p, `${rel}${n}/`);
      else out.push(`${rel}${n}`);
    }
  };
  walk(modelsDir, '');
  return out;
}

const isDownloadError = (pattern: RegExp, kind: CtxError['kind'] = 'download') => (e: unknown) => {
  assert.ok(e instanceof CtxError, `not a CtxError: ${String(e)}`);
  assert.equal(e.kind, kind, e.message);
  assert.match(e.message, pattern);
  assert.ok(!e.message.includes('\n'), 'one line');
  return true;
};

describe('hub downloads', () => {
  let server: HubServer;
  const servers: HubServer[] = [];
  const serve = async (opts: Partial<Parameters<typeof startHubServer>[0]> = {}) => {
    const s = await startHubServer({ repos: { [REPO]: { revision: REVISION, files: { ...FILES } } }, ...opts });
    servers.push(s);
    return s;
  };
  before(async () => {
    server = await serve();
  });
  afterEach(() => {
    server.requests.length = 0;
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('builds hub URLs and reads the endpoint from CTX_HF_ENDPOINT, then HF_ENDPOINT', () => {
    assert.equal(fileUrl('https://huggingface.co', 'Qwen/Qwen2.5-0.5B-Instruct', 'main', 'model.safetensors'), 'https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct/resolve/main/model.safetensors');
    assert.equal(fileUrl('http://h', 'a/b', 'main', 'sub dir/x.json'), 'http://h/a/b/resolve/main/sub%20dir/x.json');
    assert.equal(hubEndpoint({}), 'https://huggingface.co');
    assert.equal(hubEndpoint({ HF_ENDPOINT: 'https://hf-mirror.com/' }), 'https://hf-mirror.com');
    assert.equal(hubEndpoint({ HF_ENDPOINT: 'https://a', CTX_HF_ENDPOINT: 'http://b' }), 'http://b');
  });

  it('pulls every file, checks it, reports progress, and renames the folder into place', async () => {
    const { modelsDir, env } = freshEnv(server);
    const progress: PullProgress[] = [];
    const dir = await pullModel(entryOf(registry()), pullOpts(env, { onProgress: (p) => progress.push(p) }));
    assert.equal(dir, join(modelsDir, 'tiny'));
    for (const [path, body] of Object.entries(FILES)) assert.ok(readFileSync(join(dir, path)).equals(body), path);
    assert.deepEqual(listing(modelsDir), [`tiny/${MARKER}`, ...Object.keys(FILES).map((f) => `tiny/${f}`)].sort());

    const record = readDownloadRecord(dir)!;
    assert.equal(record.revision, REVISION);
    assert.deepEqual(record.files.map((f) => [f.path, f.checkedAgainst]), Object.keys(FILES).map((f) => [f, 'registry']));

    const total = Object.values(FILES).reduce((n, b) => n + b.length, 0);
    const last = progress.at(-1)!;
    assert.equal(last.done, total);
    assert.equal(last.total, total, 'total known: every size is in the registry and the optional file is absent');
    for (let k = 1; k < progress.length; k++) assert.ok(progress[k].done >= progress[k - 1].done, 'progress never goes back');
    assert.ok(server.requests.some((r) => r.path.endsWith('/generation_config.json') && r.status === 404), 'optional file asked for');

    // Pulling again, or resolving the name, uses the folder without a request.
    const before = server.requests.length;
    assert.equal(await pullModel(entryOf(registry()), pullOpts(env)), dir);
    assert.equal(await resolveModelDir('tiny', { ...pullOpts(env), registry: registry(), download: true }), dir);
    assert.equal(server.requests.length, before);
  });

  it('follows the redirect to the storage host, sending the token only to the hub', async () => {
    const hub = await serve({ redirect: true, token: 'secret-token' });
    const { env } = freshEnv(hub, { HF_TOKEN: 'secret-token' });
    const dir = await pullModel(entryOf(registry()), pullOpts(env));
    assert.ok(readFileSync(join(dir, 'model.safetensors')).equals(FILES['model.safetensors']));
    const cdn = hub.requests.filter((r) => r.path.startsWith('/cdn/'));
    assert.ok(new URL(hub.cdnUrl).origin !== new URL(hub.url).origin);
    assert.ok(cdn.length >= 1, 'large files came from the storage host');
    assert.ok(cdn.every((r) => r.authorization === null), 'no token sent to the storage host');
    assert.ok(hub.requests.filter((r) => r.path.includes('/resolve/')).every((r) => r.authorization === 'Bearer secret-token'));
  });

  it('checks a file without a registry checksum against the sha256 the hub advertises', async () => {
    const hub = await serve({ redirect: true });
    const files = Object.keys(FILES).map((path) => ({ path, size: null, sha256: null }));
    const { env } = freshEnv(hub);
    const dir = await pullModel(entryOf(registry({ files })), pullOpts(env));
    const record = readDownloadRecord(dir)!;
    assert.equal(record.files.find((f) => f.path === 'model.safetensors')!.checkedAgainst, 'hub');
    assert.equal(record.files.find((f) => f.path === 'config.json')!.checkedAgainst, 'none', 'small files are not LFS files');
  });

  it('explains a refused gated model (HTTP 401) and names HF_TOKEN', async () => {
    const hub = await serve({ token: 'right' });
    const { env, modelsDir } = freshEnv(hub);
    await assert.rejects(pullModel(entryOf(registry({ gated: true })), pullOpts(env)), isDownloadError(/HTTP 401, no HF_TOKEN set\): accept the license .* set HF_TOKEN/));
    assert.ok(!existsSync(join(modelsDir, 'tiny')));
  });

  it('resumes a dropped download with a Range request on the next pull', async () => {
    const { modelsDir, env } = freshEnv(server);
    server.dropAfter('model.safetensors', 100_000);
    await assert.rejects(pullModel(entryOf(registry()), pullOpts(env, { retries: 0 })), isDownloadError(/model\.safetensors: connection lost after 100000 of 300000 bytes .*run the same command again to resume/));

    // Nothing looks complete: no folder under the final name; the partial file holds what arrived.
    assert.ok(!existsSync(join(modelsDir, 'tiny')));
    const tmp = readdirSync(modelsDir).filter((n) => n.startsWith('.tmp-tiny-'));
    assert.equal(tmp.length, 1);
    assert.equal(statSync(join(modelsDir, tmp[0], 'model.safetensors.part')).size, 100_000);

    const progress: PullProgress[] = [];
    server.requests.length = 0;
    const dir = await pullModel(entryOf(registry()), pullOpts(env, { onProgress: (p) => progress.push(p) }));
    assert.ok(readFileSync(join(dir, 'model.safetensors')).equals(FILES['model.safetensors']));
    const modelRequests = server.requests.filter((r) => r.path.endsWith('/model.safetensors'));
    assert.deepEqual(modelRequests.map((r) => [r.range, r.status]), [['bytes=100000-', 206]]);
    assert.ok(progress.some((p) => p.resumedFrom === 100_000));
    // Files finished before the drop were not fetched again.
    assert.ok(!server.requests.some((r) => r.path.endsWith('/config.json')));
    assert.ok(!readdirSync(modelsDir).some((n) => n.startsWith('.tmp-')));
  });

  it('takes over the partial download of a pull whose process is gone', async () => {
    const { modelsDir, env } = freshEnv(server);
    server.dropAfter('model.safetensors', 50_000);
    await assert.rejects(pullModel(entryOf(registry()), pullOpts(env, { retries: 0 })), isDownloadError(/connection lost after 50000 of 300000 bytes/));
    const [tmp] = readdirSync(modelsDir).filter((n) => n.startsWith('.tmp-tiny-'));
    const deadPid = 2 ** 22 + 12345; // above Linux's pid_max default: no such process
    renameSync(join(modelsDir, tmp), join(modelsDir, `.tmp-tiny-${deadPid}`));
    server.requests.length = 0;
    await pullModel(entryOf(registry()), pullOpts(env));
    const ranges = server.requests.filter((r) => r.path.endsWith('/model.safetensors')).map((r) => r.range);
    assert.deepEqual(ranges, ['bytes=50000-']);
  });

  it('finishes a part that was complete but not yet renamed (the server answers 416)', async () => {
    const { modelsDir, env } = freshEnv(server);
    const tmp = join(modelsDir, `.tmp-tiny-${2 ** 22 + 777}`);
    mkdirSync(tmp, { recursive: true });
    writeFileSync(join(tmp, 'model.safetensors.part'), FILES['model.safetensors']);
    const dir = await pullModel(entryOf(registry()), pullOpts(env, { retries: 0 }));
    assert.ok(readFileSync(join(dir, 'model.safetensors')).equals(FILES['model.safetensors']));
    const model = server.requests.filter((r) => r.path.endsWith('/model.safetensors'));
    assert.deepEqual(model.map((r) => [r.range, r.status]), [['bytes=300000-', 416]]);
  });

  it('starts a file over when its part is longer than the file', async () => {
    const { modelsDir, env } = freshEnv(server);
    const tmp = join(modelsDir, `.tmp-tiny-${2 ** 22 + 778}`);
    mkdirSync(tmp, { recursive: true });
    writeFileSync(join(tmp, 'config.json.part'), Buffer.alloc(FILES['config.json'].length + 10, 1));
    const dir = await pullModel(entryOf(registry()), pullOpts(env, { retries: 0 }));
    assert.ok(readFileSync(join(dir, 'config.json')).equals(FILES['config.json']));
  });

  it('refuses to pull a model another running ctx is pulling', async () => {
    const { modelsDir, env } = freshEnv(server);
    mkdirSync(join(modelsDir, `.tmp-tiny-${process.ppid}`), { recursive: true });
    await assert.rejects(pullModel(entryOf(registry()), pullOpts(env)), isDownloadError(new RegExp(`another ctx \\(pid ${process.ppid}\\) is downloading "tiny"`)));
  });

  it('retries a dropped connection by itself, resuming each time', async () => {
    const { env } = freshEnv(server);
    server.dropAfter('model.safetensors', 70_000, 2);
    const dir = await pullModel(entryOf(registry()), pullOpts(env, { retries: 3 }));
    assert.ok(readFileSync(join(dir, 'model.safetensors')).equals(FILES['model.safetensors']));
    const ranges = server.requests.filter((r) => r.path.endsWith('/model.safetensors')).map((r) => r.range);
    assert.deepEqual(ranges, [null, 'bytes=70000-', 'bytes=140000-']);
  });

  it('restarts a file cleanly when the server ignores Range', async () => {
    const hub = await serve({ ignoreRange: true });
    const { env } = freshEnv(hub);
    hub.dropAfter('model.safetensors', 120_000);
    const dir = await pullModel(entryOf(registry()), pullOpts(env, { retries: 1 }));
    assert.ok(readFileSync(join(dir, 'model.safetensors')).equals(FILES['model.safetensors']));
    const model = hub.requests.filter((r) => r.path.endsWith('/model.safetensors'));
    assert.deepEqual(model.map((r) => [r.range, r.status]), [[null, 200], ['bytes=120000-', 200]]);
  });

  it('rejects a checksum mismatch, naming the file and both hashes, and keeps nothing of it', async () => {
    const { modelsDir, env } = freshEnv(server);
    const wrong = sha256('something else');
    const files = Object.entries(FILES).map(([path, body]) => ({ path, size: body.length, sha256: path === 'model.safetensors' ? wrong : sha256(body) }));
    await assert.rejects(
      pullModel(entryOf(registry({ files })), pullOpts(env)),
      isDownloadError(new RegExp(`model\\.safetensors: checksum mismatch: expected sha256 ${wrong}, got ${sha256(FILES['model.safetensors'])}; the partial file was deleted`)),
    );
    assert.ok(!existsSync(join(modelsDir, 'tiny')));
    assert.ok(!listing(modelsDir).some((p) => p.includes('model.safetensors')), listing(modelsDir).join(', '));
  });

  it('rejects a size that differs from the registry before downloading it', async () => {
    const { env } = freshEnv(server);
    const files = Object.entries(FILES).map(([path, body]) => ({ path, size: path === 'model.safetensors' ? body.length + 1 : body.length, sha256: null }));
    await assert.rejects(pullModel(entryOf(registry({ files })), pullOpts(env)), isDownloadError(/model\.safetensors: the server offers 300000 bytes, the registry expects 300001/));
  });

  it('names a file the hub does not have (404)', async () => {
    const { modelsDir, env } = freshEnv(server);
    const files = [{ path: 'config.json', size: null, sha256: null }, { path: 'weights/missing.safetensors', size: null, sha256: null }];
    await assert.rejects(
      pullModel(entryOf(registry({ files })), pullOpts(env)),
      isDownloadError(/weights\/missing\.safetensors is not in test-org\/tiny-model at revision a{40} \(HTTP 404 from http:\/\/127\.0\.0\.1:\d+\/test-org\/tiny-model\/resolve\/a{40}\/weights\/missing\.safetensors\)/),
    );
    assert.ok(!existsSync(join(modelsDir, 'tiny')));
  });

  it('says how to use a local folder when the hub cannot be reached', async () => {
    // A port that was just free: connecting to it is refused.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const { env, modelsDir } = freshEnv({ url: `http://127.0.0.1:${port}` });
    await assert.rejects(
      resolveModelDir('tiny', { ...pullOpts(env), registry: registry(), download: true }),
      isDownloadError(/cannot reach http:\/\/127\.0\.0\.1:\d+ to download "tiny" \(ECONNREFUSED\)\. .*pass --model <folder>.*CTX_HF_ENDPOINT/),
    );
    assert.deepEqual(listing(modelsDir), [], 'an attempt that got nothing leaves nothing');
    assert.deepEqual(readdirSync(modelsDir), []);
  });

  it('leaves no complete-looking folder when a pull is interrupted, and resumes afterwards', async () => {
    const { modelsDir, env } = freshEnv(server);
    const controller = new AbortController();
    const pulling = pullModel(entryOf(registry()), {
      ...pullOpts(env),
      signal: controller.signal,
      onProgress: (p) => {
        if (p.file === 'model.safetensors' && p.fileDone > 0) controller.abort();
      },
    });
    await assert.rejects(pulling, isDownloadError(/interrupted; run the same command again to resume/, 'interrupted'));
    assert.ok(!existsSync(join(modelsDir, 'tiny')));
    await assert.rejects(resolveModelDir('tiny', { registry: registry(), env }), isDownloadError(/"tiny" is not downloaded yet: run "ctx models pull tiny"/, 'model'));
    const dir = await resolveModelDir('tiny', { ...pullOpts(env), registry: registry(), download: true });
    assert.ok(readFileSync(join(dir, 'model.safetensors')).equals(FILES['model.safetensors']));
  });

  it('removes a download and any partial one', async () => {
    const { modelsDir, env } = freshEnv(server);
    await pullModel(entryOf(registry()), pullOpts(env));
    const { removed, bytes } = removeDownload('tiny', modelsDir);
    assert.ok(removed);
    assert.ok(bytes >= 300_000);
    assert.deepEqual(listing(modelsDir), []);
    assert.deepEqual(removeDownload('tiny', modelsDir), { removed: false, bytes: 0 });
  });
});

describe('resolveModelDir', () => {
  const reg = () =>
    parseRegistry(
      {
        models: [
          { name: 'hubby', hub: 'Org/Repo-X', revision: 'main', recommendedStrategy: 'select', license: 'x', files: [{ path: 'config.json', size: null, sha256: null }] },
          { name: 'builtin', local: 'builtin-model', recommendedStrategy: 'beacon', license: 'x' },
        ],
      },
      'test',
      root,
    );

  it('uses a folder path as it is, and says when it does not exist', async () => {
    const dir = join(root, 'some-model');
    mkdirSync(dir, { recursive: true });
    assert.equal(await resolveModelDir(dir, { registry: reg() }), dir);
    await assert.rejects(resolveModelDir('./no/such/model', { registry: reg() }), isDownloadError(/no\/such\/model: model folder does not exist/, 'model'));
    writeFileSync(join(root, 'a-file'), 'x');
    await assert.rejects(resolveModelDir(join(root, 'a-file'), { registry: reg() }), isDownloadError(/a model is a folder/, 'model'));
  });

  it('resolves a local entry to its folder in the package', async () => {
    await assert.rejects(resolveModelDir('builtin', { registry: reg() }), isDownloadError(/built-in model "builtin" is missing/, 'model'));
    mkdirSync(join(root, 'builtin-model'), { recursive: true });
    writeFileSync(join(root, 'builtin-model', 'config.json'), '{}');
    assert.equal(await resolveModelDir('builtin', { registry: reg() }), join(root, 'builtin-model'));
  });

  it('accepts the hub repo name of an entry, and lists the known names for an unknown one', async () => {
    const env = { CTX_CACHE_DIR: join(root, 'resolve-cache') };
    await assert.rejects(resolveModelDir('org/repo-x', { registry: reg(), env }), isDownloadError(/"hubby" is not downloaded yet/, 'model'));
    await assert.rejects(resolveModelDir('nope', { registry: reg(), env }), isDownloadError(/unknown model "nope": not a folder, and not one of hubby, builtin/, 'model'));
  });
});

describe('registry validation', () => {
  const entry = (files: unknown) => ({ models: [{ name: 'm', hub: 'a/b', revision: 'main', recommendedStrategy: 'select', license: 'x', files }] });
  const bad = (json: unknown, pattern: RegExp) => assert.throws(() => parseRegistry(json, 'reg.json', root), isDownloadError(pattern, 'model'));

  it('refuses file paths that leave the model folder, and malformed sizes and hashes', () => {
    for (const path of ['../x', '/etc/passwd', 'a/../../b', '.hidden', 'a\\b', '']) bad(entry([{ path, size: null, sha256: null }]), /must stay inside the model folder/);
    bad(entry([{ path: 'x', size: -1, sha256: null }]), /size must be a byte count or null/);
    bad(entry([{ path: 'x', size: 1, sha256: 'ABC' }]), /sha256 must be 64 lower-case hex digits/);
    bad({ models: [{ name: 'Bad Name' }] }, /entry name "Bad Name"/);
    bad({}, /no "models" list/);
  });

  it('marks a commit-sha revision as pinned and a branch as not', () => {
    const r = parseRegistry(
      {
        models: [
          { name: 'p', hub: 'a/b', revision: 'f'.repeat(40), recommendedStrategy: 'select', license: 'x', files: [{ path: 'c', size: 1, sha256: null }] },
          { name: 'u', hub: 'a/b', revision: 'main', recommendedStrategy: 'select', license: 'x', files: [{ path: 'c', size: 1, sha256: null }] },
        ],
      },
      'r',
      root,
    );
    assert.deepEqual(r.entries.map((e) => e.kind === 'hub' && e.pinned), [true, false]);
  });
});
