// The tokenizer of a GGUF file, from its tokenizer.ggml.* metadata. The metadata is turned into
// the Hugging Face tokenizer.json that describes the same tokenizer as llama.cpp runs, and encoded
// by the same EncoderCore a model folder's tokenizer.json uses (tokenizer.ts), so documents get
// the same treatment (special-token text read as text, memoised pieces, cut rules).
//
//   tokenizer.ggml.model "gpt2"  byte-level BPE: tokens + merges; the pre-tokenizer regex is the
//                                one llama.cpp compiles in for tokenizer.ggml.pre (PRE_TOKENIZERS)
//   tokenizer.ggml.model "llama" SentencePiece: tokens + scores; llama.cpp merges the adjacent pair
//                                whose joined text is the highest-scoring token, which is BPE with
//                                merges ranked by that score (as transformers converts sentencepiece
//                                models); spaces become "▁", one "▁" is prepended
//                                (tokenizer.ggml.add_space_prefix), unknown characters fall back to
//                                <0xXX> byte tokens
//   token_type  1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. Control and
//               user-defined tokens are matched in the text before anything else, as llama.cpp
//               does; control tokens are "special" (never read from document text).
//   tokenizer.chat_template      the chat template (Jinja), rendered with bos/eos token strings
//
// Not reproduced: a normalizer (llama.cpp applies none: Qwen's tokenizer.json has NFC, which
// llama.cpp skips, so on text that is not NFC-normalized ctx follows llama.cpp, not transformers).

import { CtxError } from '../../errors.js';
import { ChatTemplate } from '../chat-template.js';
import { EncoderCore } from '../tokenizer/encoder.js';
import { BoundedTextTokenizer, DEFAULT_TOKENIZER_LIMITS } from '../tokenizer/text-tokenizer.js';
import type { GgufFile } from './file.js';

type Json = Record<string, unknown>;

const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 } as const;

/** llama.cpp's pre-tokenizer regex for each tokenizer.ggml.pre value ctx reads (llama-vocab.cpp). */
const QWEN2_REGEX =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const LLAMA3_REGEX =
  "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

interface PreTokenizer {
  regex: string;
  /** A whole word that is a token is taken as is, before any merge (llama.cpp's ignore_merges). */
  ignoreMerges: boolean;
  /** BOS is added when the file does not say (tokenizer.ggml.add_bos_token). */
  addBosDefault: boolean;
}

export const PRE_TOKENIZERS: Record<string, PreTokenizer> = {
  qwen2: { regex: QWEN2_REGEX, ignoreMerges: false, addBosDefault: false },
  'llama-bpe': { regex: LLAMA3_REGEX, ignoreMerges: true, addBosDefault: true },
  llama3: { regex: LLAMA3_REGEX, ignoreMerges: true, addBosDefault: true },
  'llama-v3': { regex: LLAMA3_REGEX, ignoreMerges: true, addBosDefault: true },
  gpt2: { regex: GPT2_REGEX, ignoreMerges: false, addBosDefault: false },
};

/** What ctx needs from the metadata besides the tokenizer.json. */
export interface GgufTokenizerSpec {
  json: Json;
  bosId: number | null;
  eosIds: number[];
  addBos: boolean;
  chatTemplate: string | null;
  /** Token strings the chat template may use. */
  specials: { bos_token: string | null; eos_token: string | null; unk_token: string | null; pad_token: string | null };
}

/** The tokenizer.json (and the rest ctx needs) that a GGUF file's tokenizer metadata describes. */
export function ggufTokenizerSpec(file: GgufFile): GgufTokenizerSpec {
  const bad = (why: string) => new CtxError('model', `GGUF tokenizer: ${why}`, { path: file.path });
  const kind = file.string('tokenizer.ggml.model');
  const tokens = file.strings('tokenizer.ggml.tokens');
  const types = file.has('tokenizer.ggml.token_type') ? file.numbers('tokenizer.ggml.token_type') : tokens.map(() => TOKEN_TYPE.normal);
  if (types.length !== tokens.length) throw bad(`${types.length} token types for ${tokens.length} tokens`);
  const id = (key: string): number | null => {
    if (!file.has(key)) return null;
    const v = file.uint(key);
    if (v >= tokens.length) throw bad(`${key} ${v} is not a token id (the vocabulary has ${tokens.length})`);
    return v;
  };

  let json: Json;
  let addBosDefault: boolean;
  if (kind === 'gpt2') {
    if (!file.has('tokenizer.ggml.pre')) throw bad('tokenizer.ggml.pre is missing, so the pre-tokenizer is unknown');
    const preName = file.string('tokenizer.ggml.pre');
    const pre = PRE_TOKENIZERS[preName];
    if (!pre) throw bad(`pre-tokenizer "${preName}" is not supported (ctx reads ${Object.keys(PRE_TOKENIZERS).join(', ')})`);
    json = bpeJson(tokens, types, file.strings('tokenizer.ggml.merges'), pre, bad);
    addBosDefault = pre.addBosDefault;
  } else if (kind === 'llama') {
    const scores = file.has('tokenizer.ggml.scores') ? file.numbers('tokenizer.ggml.scores') : null;
    if (!scores || scores.length !== tokens.length) throw bad('a SentencePiece vocabulary needs one score per token (tokenizer.ggml.scores)');
    if (file.has('tokenizer.ggml.remove_extra_whitespaces') && file.bool('tokenizer.ggml.remove_extra_whitespaces')) {
      throw bad('tokenizer.ggml.remove_extra_whitespaces is not supported');
    }
    const addSpacePrefix = file.has('tokenizer.ggml.add_space_prefix') ? file.bool('tokenizer.ggml.add_space_prefix') : true;
    const unk = id('tokenizer.ggml.unknown_token_id');
    json = sentencePieceJson(tokens, types, scores, addSpacePrefix, unk === null ? null : tokens[unk]);
    addBosDefault = true;
  } else {
    throw bad(`tokenizer model "${kind}" is not supported (ctx reads gpt2, i.e. byte-level BPE, and llama, i.e. SentencePiece)`);
  }

  const bosId = id('tokenizer.ggml.bos_token_id');
  const eosIds = [...new Set(['eos', 'eot', 'eom'].map((t) => id(`tokenizer.ggml.${t}_token_id`)).filter((v): v is number => v !== null))];
  const addBos = bosId !== null && (file.has('tokenizer.ggml.add_bos_token') ? file.bool('tokenizer.ggml.add_bos_token') : addBosDefault);
  const text = (key: string) => {
    const v = id(key);
    return v === null ? null : tokens[v];
  };
  return {
    json,
    bosId,
    eosIds,
    addBos,
    chatTemplate: file.has('tokenizer.chat_template') ? file.string('tokenizer.chat_template') : null,
    specials: {
      bos_token: text('tokenizer.ggml.bos_token_id'),
      eos_token: text('tokenizer.ggml.eos_token_id'),
      unk_token: text('tokenizer.ggml.unknown_token_id'),
      pad_token: text('tokenizer.ggml.padding_token_id'),
    },
  };
}

/** Control and user-defined tokens, matched before the model runs (control ones are special). */
function addedTokens(tokens: string[], types: number[], also: (type: number) => boolean = () => false): Json[] {
  const added: Json[] = [];
  tokens.forEach((content, id) => {
    const type = types[id];
    if (type !== TOKEN_TYPE.control && type !== TOKEN_TYPE.userDefined && !also(type)) return;
    if (content.length === 0) return;
    added.push({ id, content, special: type !== TOKEN_TYPE.userDefined, single_word: false, lstrip: false, rstrip: false, normalized: false });
  });
  return added;
}

/** token → id for the BPE model; a text listed twice keeps its last id, as llama.cpp's lookup does. */
function vocabOf(tokens: string[]): Json {
  const map = new Map<string, number>();
  tokens.forEach((t, i) => map.set(t, i));
  return Object.fromEntries(map);
}

function bpeJson(tokens: string[], types: number[], merges: string[], pre: PreTokenizer, bad: (why: string) => CtxError): Json {
  const pairs = merges.map((m, i) => {
    const space = m.indexOf(' ');
    if (space <= 0 || space === m.length - 1) throw bad(`merge ${i} ${JSON.stringify(m)} is not two tokens separated by a space`);
    return [m.slice(0, space), m.slice(space + 1)];
  });
  return {
    version: '1.0',
    added_tokens: addedTokens(tokens, types),
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: pre.regex }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: pre.ignoreMerges,
      vocab: vocabOf(tokens),
      merges: pairs,
    },
  };
}

/**
 * SentencePiece as BPE: every way of splitting a token into two tokens is a merge, ranked by the
 * joined token's score (highest first; equal scores by the joined token's id, then the halves' ids).
 */
function sentencePieceJson(tokens: string[], types: number[], scores: number[], addSpacePrefix: boolean, unkToken: string | null): Json {
  const idOf = new Map<string, number>();
  tokens.forEach((t, i) => idOf.set(t, i));
  const merges: Array<{ left: string; right: string; score: number; id: number; l: number; r: number }> = [];
  tokens.forEach((t, id) => {
    if (types[id] === TOKEN_TYPE.byte || idOf.get(t) !== id) return;
    const chars = Array.from(t);
    for (let k = 1; k < chars.length; k++) {
      const left = chars.slice(0, k).join('');
      const right = chars.slice(k).join('');
      const l = idOf.get(left);
      const r = idOf.get(right);
      if (l !== undefined && r !== undefined) merges.push({ left, right, score: scores[id], id, l, r });
    }
  });
  merges.sort((a, b) => b.score - a.score || a.id - b.id || a.l - b.l || a.r - b.r);
  const normalizers: Json[] = [{ type: 'Replace', pattern: { String: ' ' }, content: '▁' }];
  if (addSpacePrefix) normalizers.unshift({ type: 'Prepend', prepend: '▁' });
  const decoders: Json[] = [{ type: 'Replace', pattern: { String: '▁' }, content: ' ' }, { type: 'ByteFallback' }, { type: 'Fuse' }];
  if (addSpacePrefix) decoders.push({ type: 'Strip', content: ' ', start: 1, stop: 0 });
  return {
    version: '1.0',
    added_tokens: addedTokens(tokens, types, (t) => t === TOKEN_TYPE.unknown),
    normalizer: { type: 'Sequence', normalizers },
    pre_tokenizer: null,
    post_processor: null,
    decoder: { type: 'Sequence', decoders },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: unkToken,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: vocabOf(tokens),
      merges: merges.map((m) => [m.left, m.right]),
    },
  };
}

/**
 * tokenizer_config.json's equivalent: transformers' default clean-up (" ," → ",") would change
 * decoded text, and llama.cpp's BPE detokenizer does not do it either.
 */
const ENCODER_CONFIG: Json = { clean_up_tokenization_spaces: false };

/** A GGUF file's tokenizer, behind the interface the engine and the CLI use. */
export class GgufTextTokenizer extends BoundedTextTokenizer {
  readonly bosId: number | null;
  readonly eosIds: number[];
  readonly addBos: boolean;
  readonly chatTemplate: string | null;
  protected readonly template: ChatTemplate | null;
  /** Document text: control-token text is ordinary text (built on first use). */
  private documentCore: EncoderCore | null = null;
  private readonly documentJson: Json;
  private readonly json: Json;

  constructor(file: GgufFile) {
    const spec = ggufTokenizerSpec(file);
    super(file.path, file.path, new EncoderCore(spec.json, ENCODER_CONFIG, file.path), DEFAULT_TOKENIZER_LIMITS);
    this.json = spec.json;
    // llama.cpp without parse_special: user-defined tokens still match, control tokens are text. The
    // text is tokenized as one string, so " <|im_end|>" may become " <|" + ... exactly as llama.cpp
    // (and transformers with split_special_tokens) does it; encoding around the special text would not.
    this.documentJson = { ...spec.json, added_tokens: (spec.json.added_tokens as Json[]).filter((t) => t.special !== true) };
    this.bosId = spec.bosId;
    this.eosIds = spec.eosIds;
    this.addBos = spec.addBos;
    this.chatTemplate = spec.chatTemplate;
    this.template =
      spec.chatTemplate === null
        ? null
        : new ChatTemplate(spec.chatTemplate, spec.specials, `${file.path} (tokenizer.chat_template)`, { timeMs: DEFAULT_TOKENIZER_LIMITS.templateMs });
  }

  protected noTemplateMessage(): string {
    return 'the GGUF file has no chat template (tokenizer.chat_template); use a chat/instruct model';
  }

  protected encodeDocumentText(text: string): number[] {
    this.documentCore ??= new EncoderCore(this.documentJson, ENCODER_CONFIG, this.dir);
    return this.documentCore.encodeText(text);
  }

  /** Workers are sent this tokenizer's description (the metadata is read once, here). */
  protected workerTokenizer(parseSpecialTokens: boolean): { json: Json; config: Json } {
    return { json: parseSpecialTokens ? this.json : this.documentJson, config: ENCODER_CONFIG };
  }
}
