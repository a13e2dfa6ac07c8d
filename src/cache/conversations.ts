// The last chat conversation about a document, so that `ctx chat -c` can continue it: one small JSON
// file per document under $CTX_CACHE_DIR/conversations, named by the document's session-cache key
// (the read document itself is the session cache's entry). Written atomically after every answer
// (temp file + rename); a file that cannot be read or parsed is treated as no conversation.

import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Turn } from '../engine/conversation.js';
import { fsError } from '../errors.js';
import { ctxCacheDir } from '../model/paths.js';

export interface SavedConversation {
  /** When the last exchange was saved (ISO 8601). */
  savedAt: string;
  turns: Turn[];
}

/** $CTX_CACHE_DIR/conversations (else $XDG_CACHE_HOME/ctx/…, else ~/.cache/ctx/…). */
export function conversationsDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(ctxCacheDir(env), 'conversations');
}

export class ConversationStore {
  constructor(readonly dir: string) {}

  pathOf(key: string): string {
    return join(this.dir, `${key}.json`);
  }

  /** The conversation kept for this document, or null (none, empty, or unreadable). */
  async load(key: string): Promise<SavedConversation | null> {
    let text: string;
    try {
      text = await readFile(this.pathOf(key), 'utf8');
    } catch {
      return null;
    }
    try {
      const saved = JSON.parse(text) as SavedConversation;
      const ids = (v: unknown) => v === undefined || (Array.isArray(v) && v.every((id) => Number.isInteger(id) && id >= 0));
      const valid =
        Array.isArray(saved.turns) &&
        saved.turns.every((t) => typeof t.question === 'string' && typeof t.answer === 'string' && ids(t.answerTokens) && (t.deferredToken === undefined || t.deferredToken === null || Number.isInteger(t.deferredToken)));
      return valid && saved.turns.length > 0 ? saved : null;
    } catch {
      return null;
    }
  }

  /** Keeps `turns` as this document's conversation (none: forgets it). A failure is an `io` CtxError naming the file. */
  async save(key: string, turns: readonly Turn[]): Promise<void> {
    const path = this.pathOf(key);
    if (turns.length === 0) {
      await rm(path, { force: true });
      return;
    }
    const tmp = join(this.dir, `.tmp-${randomBytes(6).toString('hex')}.json`);
    try {
      await mkdir(this.dir, { recursive: true });
      await writeFile(tmp, JSON.stringify({ savedAt: new Date().toISOString(), turns: [...turns] } satisfies SavedConversation));
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true }).catch(() => {});
      throw fsError(e, path, 'io');
    }
  }
}
