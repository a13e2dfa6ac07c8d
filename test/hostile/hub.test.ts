// Hostile hub replies (issue 21.4): a server that never gives a straight answer must not make a pull
// run forever, fill the disk, or be reported as a local write failure; a download folder whose pid now
// belongs to another program must not block pulls, and `models rm` clears it.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CtxError } from '../../src/errors.js';
import { pullModel, removeDownload, type PullOptions } from '../../src/model/hub.js';
import { thisProcess } from '../../src/model/owner.js';
import { parseRegistry, type HubEntry } from '../../src/model/registry.js';
import { scratchDir } from '../helpers/fixtures.js';

const servers: Server[] = [];
after(() => Promise.all(servers.map((s) => new Promise((r) => s.close(r)))));

/** A server that answers every request with `reply`, counting requests. */
async function hostileServer(reply: (req: IncomingMessage, res: ServerResponse, n: number) => void): Promise<{ url: string; count: () => number }> {
  let n = 0;
  const server = createServer((req, res) => reply(req, res, ++n));
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, count: () => n };
}

/** A registry entry of one file; size and sha256 unknown unless given. */
function entry(size: number | null = null, name = 'hostile'): HubEntry {
  const reg = parseRegistry(
    {
      models: [
        {
          name,
          hub: 'evil/model',
          revision: 'main',
          arch: 'qwen2',
          params: '1',
          nativeWindow: 128,
          recommendedStrategy: 'select',
          license: 'test',
          files: [{ path: 'model.safetensors', size, sha256: null }],
        },
      ],
    },
    'test registry',
    scratchDir('reg'),
  );
  return reg.entries[0] as HubEntry;
}

function opts(url: string, more: Partial<PullOptions> = {}): PullOptions {
  return { cacheDir: join(scratchDir('cache'), 'models'), env: { CTX_HF_ENDPOINT: url }, retries: 2, idleTimeoutMs: 3000, ...more };
}

const downloadError = (pattern: RegExp) => (e: unknown) => {
  assert.ok(e instanceof CtxError, String(e));
  assert.equal(e.kind, 'download', `exit ${e.exitCode}, not 6: ${e.message}`);
  assert.match(e.message, pattern);
  return true;
};

describe('hostile hub replies', () => {
  it('a 206 whose Content-Range never continues the file ends after the bounded attempts', { timeout: 30_000 }, async () => {
    const s = await hostileServer((_req, res) => {
      // Always a continuation from byte 5, whatever was asked (it made ctx recurse without end).
      res.writeHead(206, { 'content-range': 'bytes 5-9/10', 'content-length': 5 }).end('hello');
    });
    const o = opts(s.url);
    await assert.rejects(pullModel(entry(10), o), downloadError(/gave up after 3 attempts/));
    assert.ok(s.count() <= 4, `${s.count()} requests`);
  });

  it('a trickle slower than the minimum speed is dropped, and the pull gives up', { timeout: 30_000 }, async () => {
    const s = await hostileServer((_req, res) => {
      res.writeHead(200, { 'content-length': 1_000_000 });
      const timer = setInterval(() => res.write('x'), 100);
      res.on('close', () => clearInterval(timer));
    });
    const t0 = performance.now();
    await assert.rejects(
      pullModel(entry(1_000_000), opts(s.url, { retries: 1, minBytesPerSecond: 1000, speedWindowMs: 1000 })),
      downloadError(/slower than 1000 B\/s for 1 s .*gave up after 2 attempts/),
    );
    assert.ok(performance.now() - t0 < 10_000);
  });

  it('a file of unknown size with an endless body stops at the size cap, and its part is deleted', { timeout: 30_000 }, async () => {
    const s = await hostileServer((_req, res) => {
      res.writeHead(200); // chunked: no length
      const chunk = Buffer.alloc(64 * 1024, 1);
      const pump = () => {
        while (res.write(chunk)) {
          /* fill the socket */
        }
      };
      res.on('drain', pump);
      pump();
    });
    const o = opts(s.url, { maxUnknownBytes: 2 * 1024 * 1024 });
    await assert.rejects(pullModel(entry(null), o), downloadError(/sent more than 2 MiB, the cap for a file whose size the server does not say/));
    const left = readdirSync(o.cacheDir!, { recursive: true }).map(String);
    assert.ok(!left.some((f) => f.endsWith('.part')), `left: ${left}`);
  });

  it('server errors (5xx, reset connections, bad redirects) are download failures, never local write failures', { timeout: 30_000 }, async () => {
    const always500 = await hostileServer((_req, res) => res.writeHead(503).end());
    await assert.rejects(pullModel(entry(10), opts(always500.url, { retries: 1 })), downloadError(/HTTP 503/));
    const reset = await hostileServer((req) => req.socket.destroy());
    await assert.rejects(pullModel(entry(10), opts(reset.url, { retries: 1 })), downloadError(/network error/));
    const badRedirect = await hostileServer((_req, res) => res.writeHead(302, { location: 'file:///etc/passwd' }).end());
    await assert.rejects(pullModel(entry(10), opts(badRedirect.url)), downloadError(/redirected .* to a file: address/));
  });
});

describe('what a pull leaves (issue 21.2)', () => {
  it('the models folder, the model folder and its files are private to the user (0700/0600)', { timeout: 30_000 }, async () => {
    const body = Buffer.from('0123456789');
    const s = await hostileServer((_req, res) => res.writeHead(200, { 'content-length': 10 }).end(body));
    const o = opts(s.url);
    const old = process.umask(0o022);
    try {
      const dir = await pullModel(entry(10, 'private'), o);
      assert.equal(statSync(o.cacheDir!).mode & 0o777, 0o700);
      assert.equal(statSync(dir).mode & 0o777, 0o700);
      for (const f of readdirSync(dir)) assert.equal(statSync(join(dir, f)).mode & 0o777, 0o600, f);
    } finally {
      process.umask(old);
    }
  });
});

describe('download locks', () => {
  /** A running process that is not ctx: its pid will sit in a stale download folder's name. */
  function otherProcess(): { pid: number; stop: () => void } {
    const child = spawn('sleep', ['30']);
    return { pid: child.pid!, stop: () => child.kill() };
  }

  it('a folder whose pid now belongs to another program does not block a pull; models rm clears it', { timeout: 30_000 }, async () => {
    const body = Buffer.from('0123456789');
    const s = await hostileServer((_req, res) => res.writeHead(200, { 'content-length': 10 }).end(body));
    const other = otherProcess();
    try {
      const o = opts(s.url);
      mkdirSync(o.cacheDir!, { recursive: true });
      // The pid is alive, but its start time is not the one recorded: the pull that made it is gone.
      const reused = join(o.cacheDir!, `.tmp-hostile-${other.pid}.1`);
      mkdirSync(reused);
      writeFileSync(join(reused, 'model.safetensors.part'), '01234');
      const dir = await pullModel(entry(10), o);
      assert.ok(existsSync(join(dir, 'model.safetensors')));

      // An older ctx named its folder by pid alone; idle for an hour, it is stale even though the pid lives.
      const legacy = join(o.cacheDir!, `.tmp-other-${other.pid}`);
      mkdirSync(legacy);
      writeFileSync(join(legacy, 'x.part'), 'x');
      const hourAgo = Date.now() / 1000 - 3600;
      utimesSync(join(legacy, 'x.part'), hourAgo, hourAgo);
      utimesSync(legacy, hourAgo, hourAgo);
      assert.deepEqual(removeDownload('other', o.cacheDir!), { removed: true, bytes: 1 });
      assert.equal(existsSync(legacy), false);
    } finally {
      other.stop();
    }
  });

  it('a folder of a pull that is still running blocks a second pull', async () => {
    const o = opts('http://127.0.0.1:9');
    mkdirSync(o.cacheDir!, { recursive: true });
    const me = thisProcess();
    // Another pull in this very process stands in for a live one: same pid and start time.
    mkdirSync(join(o.cacheDir!, `.tmp-hostile-${me.pid}.${me.start}x`), { recursive: true });
    mkdirSync(join(o.cacheDir!, `.tmp-busy-${process.ppid}`), { recursive: true });
    await assert.rejects(pullModel(entry(10, 'busy'), o), /another ctx \(pid \d+\) is downloading "busy"/);
  });
});
