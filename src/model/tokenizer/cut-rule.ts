// Where a long text may be cut so that encoding the pieces one by one gives exactly the ids of
// encoding it whole. That makes parallel and memoised encoding possible (encoder.ts, pool.ts). Each
// tokenizer gets a "cut rule" naming the only places ctx may cut, or none at all (then segments are
// encoded whole: still correct, only less parallel).

import { type HfBpeModel, type HfTokenizer, type Json, libraryIds } from './library.js';

export interface CutDecision {
  rule: CutRule | null;
  /** The whole text is one BPE "word" for this tokenizer (sentencepiece style). */
  giantWord: boolean;
  reason: string;
}

/**
 * Cuts are made only at a single ASCII space with a letter on each side ("word| word").
 *  - keep-space: the piece after the cut starts with the space. Right for regex pre-tokenizers
 *    (GPT-2, Llama 3, Qwen: " word" is always one pre-token, split from what precedes it) and for
 *    Metaspace, which does not add a second "▁" to a piece that already starts with one.
 *  - drop-space: the space is left out and the tokenizer's own Prepend("▁") normalizer puts it back
 *    (legacy sentencepiece-style tokenizer.json, e.g. Llama 2 and the aidreams model).
 */
export type CutRule = 'keep-space' | 'drop-space';

const CUT_POINT = /(?<=\p{L}) (?=\p{L})/gu;

/** Normalizers that act on each character (or compose with combining marks) and so cannot see a cut. */
const LOCAL_NORMALIZERS = new Set(['NFC', 'NFD', 'NFKC', 'NFKD', 'Lowercase']);

function flatten(node: unknown, listKey: string): Json[] {
  if (!node || typeof node !== 'object') return [];
  const n = node as Json;
  if (n.type === 'Sequence' && Array.isArray(n[listKey])) return (n[listKey] as unknown[]).flatMap((c) => flatten(c, listKey));
  return [n];
}

/** Texts on which every cut point is tried at load time, as a check of the reasoning in deriveCutRule. */
export const CUT_PROBES = [
  'The quick brown fox jumps over the lazy dog, and then it sleeps.',
  'naïve café déjà vu; Ünïcödé wörds and Ελληνικά κείμενα εδώ',
  "don't stop it's fine they'll see we've been I'm sure",
  'a b c d e f g h i j k l m n o p',
  'In 2024 there were 365 days x y z and ABC def GHI.',
  'first line\nsecond line here\tand tab then text',
  '日本 語の テキスト と 中文 文本',
];

/**
 * Decides whether and how long texts may be cut for this tokenizer. The reasoning is structural:
 * a BPE token can only span a cut if the pre-tokenizer keeps both sides in one "word" and a merge
 * joins them. Anything not understood here gets no cut rule; segments are then encoded whole
 * (still correct, only less parallel).
 */
export function deriveCutRule(json: Json, hf: HfTokenizer): CutDecision {
  const none = (reason: string) => ({ rule: null, giantWord: false, reason });
  const model = json.model as Json;
  if (model.type !== 'BPE' && !(model.type === undefined && 'merges' in model)) return none(`model type ${String(model.type)} is not BPE`);
  if (model.unk_token && model.fuse_unk && !model.byte_fallback) return none('unknown tokens are fused across neighbours');

  for (const t of (json.added_tokens as Json[] | undefined) ?? []) {
    const content = String(t.content ?? '');
    // An added token is matched before anything else; a cut inside or right beside one could change that.
    if (/\s/.test(content) || /^\p{L}|\p{L}$/u.test(content)) return none(`added token ${JSON.stringify(content)} could touch a cut`);
  }

  const normalizers = flatten(json.normalizer, 'normalizers');
  const preTokenizers = flatten(json.pre_tokenizer, 'pretokenizers');
  let prepend = false;
  let spaceToMeta = false;
  for (const n of normalizers) {
    const type = String(n.type);
    if (LOCAL_NORMALIZERS.has(type)) continue;
    if (type === 'Prepend' && n.prepend === '▁') prepend = true;
    else if (type === 'Replace' && (n.pattern as Json | undefined)?.String === ' ' && n.content === '▁') spaceToMeta = true;
    else return none(`normalizer ${type} is not known to be safe to cut around`);
  }

  let rule: CutRule;
  let giantWord: boolean;
  const preTypes = preTokenizers.map((p) => String(p.type));
  if (preTypes.length === 0) {
    // No pre-tokenizer: BPE runs over the whole text as one word (sentencepiece style).
    if (!(prepend && spaceToMeta)) return none('no pre-tokenizer and no sentencepiece-style normalizer');
    rule = 'drop-space';
    giantWord = true;
  } else if (preTypes.length === 1 && preTypes[0] === 'Metaspace') {
    if (prepend) return none('Prepend normalizer together with Metaspace');
    // This library's Metaspace never splits, so the text is one word here too.
    rule = 'keep-space';
    giantWord = true;
  } else if (preTypes.every((t) => t === 'Split' || t === 'ByteLevel' || t === 'Digits')) {
    if (prepend || spaceToMeta) return none('space-replacing normalizer together with a regex pre-tokenizer');
    const splits = preTokenizers.some((p) => p.type === 'Split' || (p.type === 'ByteLevel' && p.use_regex !== false));
    if (!splits) return none('pre-tokenizer does not split words');
    rule = 'keep-space';
    giantWord = false;
  } else {
    return none(`pre-tokenizer ${preTypes.join('+')} is not known to be safe to cut around`);
  }

  if (giantWord) {
    // The whole text is one word, so what keeps a cut "x|▁y" clean is that no merge joins a token
    // ending in a letter with one starting with "▁".
    const bpe = hf.model as HfBpeModel;
    const meta = '▁';
    if (bpe.merges.some(([a, b]) => b.startsWith(meta) && /\p{L}$/u.test(a))) return none('a merge joins a word to the following "▁"');
  }

  for (const probe of CUT_PROBES) {
    const whole = libraryIds(hf, probe);
    const pieces = cutText(probe, rule, 1).flatMap((p) => libraryIds(hf, p));
    if (whole.length !== pieces.length || whole.some((id, i) => id !== pieces[i])) {
      return none(`cutting changed the tokens of ${JSON.stringify(probe)}`);
    }
  }
  return { rule, giantWord, reason: giantWord ? `${rule} (sentencepiece-style, one BPE word per piece)` : `${rule} (regex pre-tokenizer)` };
}

/**
 * Cuts `text` into pieces of at least `target` characters (the last may be shorter) at cut points
 * only. Encoding the pieces one by one gives the same ids as encoding `text`.
 */
export function cutText(text: string, rule: CutRule, target: number): string[] {
  const pieces: string[] = [];
  let start = 0;
  const re = new RegExp(CUT_POINT); // own lastIndex: callers may run concurrently in one thread via async code
  while (text.length - start > target) {
    re.lastIndex = start + target;
    const m = re.exec(text);
    if (!m) break;
    pieces.push(text.slice(start, m.index));
    start = rule === 'drop-space' ? m.index + 1 : m.index;
  }
  pieces.push(text.slice(start));
  return pieces;
}
