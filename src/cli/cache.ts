// `ctx cache ls | rm <id…> | clear`: the documents ctx keeps read (src/cache). An entry's id is its
// key, 64 hex digits; `ls` shows the first 12, and any unambiguous prefix names it. `ls` rows fit
// LS_COLUMNS: model folders show as their name, inputs relative to here (or ~), and a row still too
// wide ends in "…" (--json has everything in full).

import { homedir } from 'node:os';
import { basename, isAbsolute, relative, sep } from 'node:path';
import { Command, Option } from 'commander';
import { DEFAULT_CACHE_MAX_BYTES, pdfTextDir, SessionCache, sessionsDir, tokenMemoDir, type CacheEntryInfo } from '../cache/store.js';
import { TokenMemo } from '../cache/token-memo.js';
import { CtxError } from '../errors.js';
import { ctxCacheDir } from '../model/paths.js';
import { PdfTextCache } from '../input/pdf-text-cache.js';
import { cellWidth, counted } from '../ui/format.js';
import { formatBytes } from '../units.js';
import { formatCount, formatTable, out, type RunContext } from './io.js';
import { byteSizeArg } from './options.js';

const SHORT_ID = 12;
/** The widest an `ls` row gets. */
export const LS_COLUMNS = 100;
/** The widest a model's name gets in an `ls` row. */
const MODEL_COLUMNS = 20;

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
          h ? strategyLabel(h.meta.strategy) : '(unreadable: removed when next used)',
          h ? h.meta.backend : '',
          h ? fitColumns(modelLabel(h.meta.model), MODEL_COLUMNS) : '',
          h ? h.meta.inputs.map(shortPath).join(' ') : '',
        ]);
      }
      for (const line of formatTable(rows, [false, true, false, true])) out(run, fitColumns(line, LS_COLUMNS));
      out(run, `${entries.length} entr${entries.length === 1 ? 'y' : 'ies'}, ${formatBytes(total)} of ${formatBytes(cache.maxBytes)} · ${shortPath(cache.dir)}`);
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
    .description('remove every cached document, and the kept text of PDFs')
    .action(async (_o: unknown, c: Command) => {
      const o = c.optsWithGlobals<CacheOptions>();
      const cache = openCache(run, o);
      const ids = (await cache.list()).map((e) => e.id);
      const removed = await cache.clear();
      const texts = await new PdfTextCache(pdfTextDir(run.env)).clear();
      await new TokenMemo(tokenMemoDir(run.env), ctxCacheDir(run.env)).clear();
      report(run, o, ids, removed.bytes, texts);
    });

  return cmd;
}

function openCache(run: RunContext, o: CacheOptions): SessionCache {
  return new SessionCache(sessionsDir(run.env), { maxBytes: o.cacheMaxSize });
}

function report(run: RunContext, o: CacheOptions, ids: string[], bytes: number, pdfTexts?: { count: number; bytes: number }): void {
  if (o.json) out(run, JSON.stringify({ removed: ids, bytes, ...(pdfTexts ? { pdfTexts } : {}) }));
  else {
    const texts = pdfTexts?.count ? ` and the text of ${counted(pdfTexts.count, 'PDF')} (${formatBytes(pdfTexts.bytes)})` : '';
    out(run, `removed ${counted(ids.length, 'cached document')} (${formatBytes(bytes)})${texts}`);
  }
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

/** "11-22 14:03" in local time (with the year when it is not this one). */
function localTime(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  const day = `${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  return d.getFullYear() === new Date().getFullYear() ? day : `${d.getFullYear()}-${day}`;
}

/** "beacon v3 (ratio 8, window 32)" → "beacon r8"; "select (k 2048, …)" → "select": the full description is in --json. */
function strategyLabel(description: string): string {
  const name = description.split(/[\s(]/)[0]!;
  const ratio = /ratio (\d+)/.exec(description)?.[1];
  return ratio ? `${name} r${ratio}` : name;
}

/** A model as named: a registry name as it is, a folder by its last part. */
function modelLabel(model: string): string {
  return model.includes('/') || model.includes(sep) ? basename(model) : model;
}

/** A path as short as it reads unambiguously: relative to the working folder when inside it, else with ~ for home. */
function shortPath(path: string): string {
  if (path === '-' || !isAbsolute(path)) return path;
  const rel = relative(process.cwd(), path);
  if (rel && !rel.startsWith('..') && !isAbsolute(rel)) return rel;
  const home = homedir();
  return path === home || path.startsWith(`${home}${sep}`) ? `~${path.slice(home.length)}` : path;
}

/** `line` cut to `columns` terminal cells, ending in "…" when cut. */
function fitColumns(line: string, columns: number): string {
  if (cellWidth(line) <= columns) return line;
  let cut = '';
  for (const ch of line) {
    if (cellWidth(cut + ch) > columns - 1) break;
    cut += ch;
  }
  return `${cut}…`;
}
