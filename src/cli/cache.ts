// `ctx cache ls | rm <id…> | clear`: the documents ctx keeps read (src/cache). An entry's id is its
// key, 64 hex digits; `ls` shows the first 12, and any unambiguous prefix names it.

import { Command, Option } from 'commander';
import { DEFAULT_CACHE_MAX_BYTES, SessionCache, sessionsDir, type CacheEntryInfo } from '../cache/store.js';
import { CtxError } from '../errors.js';
import { formatBytes } from '../units.js';
import { formatCount, formatTable, out, type RunContext } from './io.js';
import { byteSizeArg } from './options.js';

const SHORT_ID = 12;

interface CacheOptions {
  json?: boolean;
  cacheMaxSize: number;
}

export function cacheCommand(run: RunContext): Command {
  const cmd = new Command('cache')
    .description('list or remove the read documents ctx keeps, so that a second question skips reading')
    .addOption(new Option('--cache-max-size <size>', 'the size cap `ls` reports against (ask, summarize and chat evict down to it)').argParser(byteSizeArg).default(DEFAULT_CACHE_MAX_BYTES, '4G'));

  cmd
    .command('ls')
    .description('list the cached documents, most recently used first')
    .action(async (_o: unknown, c: Command) => {
      const o = c.optsWithGlobals<CacheOptions>();
      const cache = openCache(run, o);
      const entries = await cache.list();
      const total = entries.reduce((n, e) => n + e.bytes, 0);
      if (o.json) {
        out(run, JSON.stringify({ dir: cache.dir, totalBytes: total, maxBytes: cache.maxBytes, entries: entries.map(entryJson) }, null, 2));
        return;
      }
      if (entries.length === 0) {
        out(run, `no cached documents (${cache.dir})`);
        return;
      }
      const rows = [['ID', 'SIZE', 'LAST USED', 'TOKENS', 'STRATEGY', 'BACKEND', 'MODEL', 'INPUTS']];
      for (const e of entries) {
        const h = e.header;
        rows.push([
          e.id.slice(0, SHORT_ID),
          formatBytes(e.bytes),
          localTime(e.lastUsed),
          h ? formatCount(h.meta.tokens) : '?',
          h ? h.meta.strategy : '(unreadable: removed when next used)',
          h ? `${h.meta.backend} ${h.meta.numeric}` : '',
          h ? h.meta.model : '',
          h ? h.meta.inputs.join(' ') : '',
        ]);
      }
      for (const line of formatTable(rows, [false, true, false, true])) out(run, line);
      out(run, `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, ${formatBytes(total)} of ${formatBytes(cache.maxBytes)} · ${cache.dir}`);
    });

  cmd
    .command('rm')
    .description('remove cached documents by id (a prefix of it is enough)')
    .argument('<ids...>', 'ids from `ctx cache ls`')
    .action(async (ids: string[], _o: unknown, c: Command) => {
      const o = c.optsWithGlobals<CacheOptions>();
      const cache = openCache(run, o);
      const entries = await cache.list();
      const chosen = new Map<string, CacheEntryInfo>();
      for (const id of ids) {
        const prefix = id.toLowerCase();
        const matches = entries.filter((e) => e.id.startsWith(prefix));
        if (matches.length === 0) throw new CtxError('usage', `no cached document has the id ${id} (see ctx cache ls)`);
        if (matches.length > 1) throw new CtxError('usage', `${id} matches ${matches.length} cached documents; give more of the id`);
        chosen.set(matches[0]!.id, matches[0]!);
      }
      const removed = await cache.remove([...chosen.values()]);
      report(run, o, [...chosen.keys()], removed.bytes);
    });

  cmd
    .command('clear')
    .description('remove every cached document')
    .action(async (_o: unknown, c: Command) => {
      const o = c.optsWithGlobals<CacheOptions>();
      const cache = openCache(run, o);
      const ids = (await cache.list()).map((e) => e.id);
      const removed = await cache.clear();
      report(run, o, ids, removed.bytes);
    });

  return cmd;
}

function openCache(run: RunContext, o: CacheOptions): SessionCache {
  return new SessionCache(sessionsDir(run.env), { maxBytes: o.cacheMaxSize });
}

function report(run: RunContext, o: CacheOptions, ids: string[], bytes: number): void {
  if (o.json) out(run, JSON.stringify({ removed: ids, bytes }));
  else out(run, `removed ${ids.length} cached document${ids.length === 1 ? '' : 's'} (${formatBytes(bytes)})`);
}

function entryJson(e: CacheEntryInfo) {
  const h = e.header;
  return {
    id: e.id,
    path: e.path,
    bytes: e.bytes,
    lastUsed: e.lastUsed.toISOString(),
    readable: h !== null,
    createdAt: h?.createdAt ?? null,
    ...(h ? h.meta : {}),
  };
}

/** "2026-11-22 14:03" in local time. */
function localTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}
