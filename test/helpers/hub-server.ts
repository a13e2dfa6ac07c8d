// A local HTTP server with the Hugging Face hub's download layout, for testing ctx's downloader
// without a network:
//
//   GET <url>/<org>/<repo>/resolve/<revision>/<path>   the file (or a 302 to the storage host when `redirect`)
//   GET <cdnUrl>/cdn/<org>/<repo>/<path>               the file, as the hub's storage host would serve it
//
// The storage host listens on a second port, so it is another origin, as it is for the real hub.
// It honours "Range: bytes=N-" (206 + Content-Range) unless told to ignore it, can require a bearer
// token on /resolve (never on /cdn, like the real storage host), can cut a response off mid-file, and
// records every request so tests can assert what the client asked for.

import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface HubRepo {
  /** The commit the repo is at; requests for it or for "main" are served. */
  revision: string;
  files: Record<string, Buffer>;
}

export interface HubServerOptions {
  repos: Record<string, HubRepo>;
  /** Answer /resolve for files over 1 KB with a 302 to /cdn, with X-Linked-Etag/Size like the hub's LFS files. */
  redirect?: boolean;
  /** Require "Authorization: Bearer <token>" on /resolve. */
  token?: string;
  /** Send the whole file (200) even when a Range is asked for. */
  ignoreRange?: boolean;
}

export interface RecordedRequest {
  path: string;
  range: string | null;
  authorization: string | null;
  status: number;
}

export interface HubServer {
  /** http://127.0.0.1:<port>, to use as CTX_HF_ENDPOINT. */
  url: string;
  /** The storage host that redirects point to. */
  cdnUrl: string;
  requests: RecordedRequest[];
  /** The next `times` responses carrying `file` are cut off (socket destroyed) after `bytes` body bytes. */
  dropAfter(file: string, bytes: number, times?: number): void;
  close(): Promise<void>;
}

export const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export async function startHubServer(opts: HubServerOptions): Promise<HubServer> {
  const requests: RecordedRequest[] = [];
  const drops = new Map<string, { bytes: number; times: number }>();

  function lookup(repoName: string, revision: string | null, path: string): Buffer | undefined {
    const repo = opts.repos[repoName];
    if (!repo || (revision !== null && revision !== repo.revision && revision !== 'main')) return undefined;
    return repo.files[path];
  }

  function send(req: IncomingMessage, res: ServerResponse, path: string, body: Buffer): number {
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let start = 0;
    let end = body.length - 1;
    let status = 200;
    if (range && !opts.ignoreRange) {
      start = Number(range[1]);
      if (range[2]) end = Math.min(end, Number(range[2]));
      if (start >= body.length) {
        res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
        return 416;
      }
      status = 206;
    }
    const slice = body.subarray(start, end + 1);
    const headers: Record<string, string | number> = { 'content-length': slice.length, 'accept-ranges': 'bytes', 'content-type': 'application/octet-stream' };
    if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${body.length}`;
    const drop = drops.get(path);
    if (drop && drop.times > 0) {
      drop.times--;
      // Send part of the body, then close the connection as a flaky network would. The pause lets
      // the client take in what was sent (fetch discards body bytes still queued when the stream
      // errors), so tests know exactly how much arrived.
      res.writeHead(status, { ...headers, connection: 'close' });
      res.write(slice.subarray(0, Math.min(drop.bytes, slice.length)), () => setTimeout(() => res.socket?.end(), 150));
      return status;
    }
    res.writeHead(status, headers);
    res.end(slice);
    return status;
  }

  let cdnUrl = '';
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const parts = url.pathname.split('/').slice(1).map(decodeURIComponent);
    let status = 404;
    const record = () =>
      requests.push({ path: url.pathname, range: req.headers.range ?? null, authorization: req.headers.authorization ?? null, status });

    if (parts[0] === 'cdn' && parts.length >= 4) {
      const body = lookup(`${parts[1]}/${parts[2]}`, null, parts.slice(3).join('/'));
      if (body) status = send(req, res, parts.slice(3).join('/'), body);
      else res.writeHead(404).end('not found');
      return record();
    }
    if (parts.length >= 5 && parts[2] === 'resolve') {
      if (opts.token && req.headers.authorization !== `Bearer ${opts.token}`) {
        status = 401;
        res.writeHead(401).end('unauthorized');
        return record();
      }
      const repo = `${parts[0]}/${parts[1]}`;
      const path = parts.slice(4).join('/');
      const body = lookup(repo, parts[3], path);
      if (!body) {
        res.writeHead(404).end('Entry not found');
        return record();
      }
      if (opts.redirect && body.length > 1024) {
        status = 302;
        res
          .writeHead(302, {
            location: `${cdnUrl}/cdn/${repo}/${path}?signature=test`,
            'x-linked-etag': `"${sha256(body)}"`,
            'x-linked-size': String(body.length),
          })
          .end();
        return record();
      }
      status = send(req, res, path, body);
      return record();
    }
    res.writeHead(404).end('not found');
    record();
  };

  const listen = async () => {
    const server = createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
  };
  const hub = await listen();
  const cdn = await listen();
  cdnUrl = cdn.url;
  const close = (server: typeof hub.server) =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return {
    url: hub.url,
    cdnUrl,
    requests,
    dropAfter(file, bytes, times = 1) {
      drops.set(file, { bytes, times });
    },
    close: async () => {
      await Promise.all([close(hub.server), close(cdn.server)]);
    },
  };
}
