"""The needle language: vocabulary, token ids, documents and training batches.

A document is filler words with planted facts `<Name> <number>` and, optionally, distractor names that
get no number. The question that follows it names one fact's name; the answer is that name's number,
then end of sequence:

    <s> the house Alice 417 over ... Bob ... Carol 233 quiet ...
    recall Carol            -> 233 </s>

`make_needle_document` is the same algorithm as `makeNeedleDocument` in src/demo/ (TypeScript): the same
seed gives the same text, word for word (mulberry32 PRNG, see `Mulberry32`). Training uses the faster,
equally distributed `sample_batch` (numpy), which asks about every fact of a document in turn
(multi-query associative recall).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
VOCAB = json.load(open(os.path.join(HERE, "vocab.json"), encoding="utf-8"))

SPECIALS: list[str] = VOCAB["specials"]  # <pad> <s> </s> <unk>
QUERY: str = VOCAB["query"]  # "recall"
KEYS: list[str] = VOCAB["keys"]  # 64 names
VALUES: list[str] = VOCAB["values"]  # 128 three-digit numbers
FILLERS: list[str] = VOCAB["fillers"]  # common words

WORDS: list[str] = SPECIALS + [QUERY] + KEYS + VALUES + FILLERS
ID = {w: i for i, w in enumerate(WORDS)}
assert len(ID) == len(WORDS), "vocabulary words must be distinct"
VOCAB_SIZE = len(WORDS)

PAD, BOS, EOS, UNK = 0, 1, 2, 3
QRY = ID[QUERY]
KEY0 = ID[KEYS[0]]
VAL0 = ID[VALUES[0]]
FIL0 = ID[FILLERS[0]]
N_KEYS, N_VALUES, N_FILLERS = len(KEYS), len(VALUES), len(FILLERS)
WORDS_PER_LINE = 16


class Mulberry32:
    """mulberry32, bit-identical to the TypeScript version in src/demo/rng.ts."""

    def __init__(self, seed: int):
        self.state = seed & 0xFFFFFFFF

    def next(self) -> float:
        self.state = (self.state + 0x6D2B79F5) & 0xFFFFFFFF
        t = self.state
        t = ((t ^ (t >> 15)) * (t | 1)) & 0xFFFFFFFF
        t ^= (t + (((t ^ (t >> 7)) * (t | 61)) & 0xFFFFFFFF)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296.0

    def int(self, n: int) -> int:
        return math.floor(self.next() * n)


@dataclass
class Fact:
    key: str
    value: str
    index: int  # index of the key word in the document's words; the value follows it


@dataclass
class NeedleDocument:
    text: str
    question: str  # `recall <key of facts[0]>`
    answer: str  # value of facts[0]
    key: str
    value: str
    words: list[str]  # the document's words (its tokens), facts and distractors included
    needle_index: int  # index of the asked key word in `words`
    facts: list[Fact]  # facts[0] is the one asked, at the requested depth; the others at random depths
    distractors: list[Fact]  # names without a number (value "")


def _shuffled_prefix(rng: Mulberry32, n: int, k: int, start: int, pool: list[int]) -> None:
    """Steps start..k-1 of a Fisher-Yates shuffle of `pool` (length n), in place: pool[:k] is then a
    uniform draw without replacement."""
    for i in range(start, k):
        j = i + rng.int(n - i)
        pool[i], pool[j] = pool[j], pool[i]


def make_needle_document(tokens: int, depth: float, seed: int, facts: int = 1, distractors: int = 0) -> NeedleDocument:
    """Same contract and algorithm as makeNeedleDocument in src/demo/needle.ts (same seed, same words).

    `facts` pairs `<Name> <number>` (distinct names, distinct numbers) and `distractors` names that get no
    number; the question asks the first fact, which sits at `depth`; the other items sit at random depths.
    The draws: name 0, number 0, names 1.., numbers 1.., the filler words, then one slot per other item,
    so a one-fact document is the same text as the first recipe's needle document."""
    if not (isinstance(tokens, int) and isinstance(facts, int) and isinstance(distractors, int)):
        raise ValueError("tokens, facts and distractors must be integers")
    if not 1 <= facts <= N_VALUES or distractors < 0 or facts + distractors > N_KEYS:
        raise ValueError(f"need 1 <= facts <= {N_VALUES}, distractors >= 0 and facts + distractors <= {N_KEYS}")
    if tokens < 2 * facts + distractors:
        raise ValueError(f"tokens must be >= {2 * facts + distractors} for {facts} facts and {distractors} distractors")
    if not (0.0 <= depth <= 1.0):
        raise ValueError("depth must be in [0, 1]")
    rng = Mulberry32(seed)
    names, values = list(range(N_KEYS)), list(range(N_VALUES))
    n_items = facts + distractors
    _shuffled_prefix(rng, N_KEYS, 1, 0, names)
    _shuffled_prefix(rng, N_VALUES, 1, 0, values)
    _shuffled_prefix(rng, N_KEYS, n_items, 1, names)
    _shuffled_prefix(rng, N_VALUES, facts, 1, values)
    n_fill = tokens - 2 * facts - distractors
    fill = [FILLERS[rng.int(N_FILLERS)] for _ in range(n_fill)]
    slots = [math.floor(depth * n_fill + 0.5)] + [rng.int(n_fill + 1) for _ in range(n_items - 1)]
    # items in a slot go before the filler word of that slot, in item order
    by_slot: dict[int, list[int]] = {}
    for item, s in enumerate(slots):
        by_slot.setdefault(s, []).append(item)
    words: list[str] = []
    where = [0] * n_items
    for s in range(n_fill + 1):
        for item in by_slot.get(s, []):
            where[item] = len(words)
            words.append(KEYS[names[item]])
            if item < facts:
                words.append(VALUES[values[item]])
        if s < n_fill:
            words.append(fill[s])
    fact_list = [Fact(KEYS[names[i]], VALUES[values[i]], where[i]) for i in range(facts)]
    distractor_list = [Fact(KEYS[names[facts + j]], "", where[facts + j]) for j in range(distractors)]
    lines = [" ".join(words[i : i + WORDS_PER_LINE]) for i in range(0, len(words), WORDS_PER_LINE)]
    asked = fact_list[0]
    return NeedleDocument(
        text="\n".join(lines) + "\n",
        question=f"{QUERY} {asked.key}",
        answer=asked.value,
        key=asked.key,
        value=asked.value,
        words=words,
        needle_index=asked.index,
        facts=fact_list,
        distractors=distractor_list,
    )


def encode_words(text: str) -> list[int]:
    """The tokenizer, for text of this language: whitespace split, one id per word, <unk> otherwise."""
    return [ID.get(w, UNK) for w in text.split()]


def prompt_ids(doc_text: str, question: str, bos: bool = True) -> list[int]:
    """What ctx feeds a model without a chat template: [bos] document, then the question."""
    return ([BOS] if bos else []) + encode_words(doc_text) + encode_words(question)


@dataclass
class Batch:
    """A training batch of multi-query associative recall (MQAR): B sequences of T tokens,
    `[bos] document (recall K V </s>)*q`; the loss is on `targets` at the rows `target_rows`."""

    ids: np.ndarray  # [B, T] int64
    target_rows: np.ndarray  # [q*2] rows whose next token is scored: each query's K row (-> V) and V row (-> </s>)
    targets: np.ndarray  # [B, q*2] the expected next tokens at those rows
    facts: int
    queries: int


def sample_batch(rng: np.random.Generator, batch: int, doc_tokens: int, facts: int, distractors: int, queries: int, bos: bool = True, independent: bool = False) -> Batch:
    """B documents of `doc_tokens` words, each with `facts` pairs and `distractors` lone names at uniform
    random slots (distinct names, distinct numbers per document), then `queries` questions, each about a
    fact of that document (every fact once, in random order, then again while queries remain; with
    `independent`, each question's fact drawn uniformly, so a fact may be asked twice and another never),
    each followed by its answer and </s>, the way a ctx chat continues after an answer. When every fact
    is asked once, a model can answer the j-th question right 1/(facts - j) of the time without binding,
    by naming a number not yet answered (mean over 8 facts: 0.34); independent questions close that
    shortcut."""
    n_fill = doc_tokens - 2 * facts - distractors
    assert n_fill >= 0, "document too short for its facts"
    n_items = facts + distractors
    names = np.argsort(rng.random((batch, N_KEYS)), axis=1)[:, :n_items] + KEY0
    vals = np.argsort(rng.random((batch, N_VALUES)), axis=1)[:, :facts] + VAL0
    fill = rng.integers(FIL0, FIL0 + N_FILLERS, size=(batch, n_fill))
    slots = rng.integers(0, n_fill + 1, size=(batch, n_items))
    off = 1 if bos else 0
    T = off + doc_tokens + 4 * queries
    ids = np.empty((batch, T), dtype=np.int64)
    if bos:
        ids[:, 0] = BOS
    targets = np.empty((batch, 2 * queries), dtype=np.int64)
    # sort key per document token: 2*slot for items (before the filler of that slot), 2*slot+1 for fillers
    item_tok_key = np.repeat(2 * slots, [2] * facts + [1] * distractors, axis=1)  # [B, 2F+D]
    item_tok = np.empty((batch, 2 * facts + distractors), dtype=np.int64)
    item_tok[:, 0 : 2 * facts : 2] = names[:, :facts]
    item_tok[:, 1 : 2 * facts : 2] = vals
    item_tok[:, 2 * facts :] = names[:, facts:]
    keys = np.concatenate([item_tok_key, 2 * np.arange(n_fill)[None, :].repeat(batch, 0) + 1], axis=1)
    toks = np.concatenate([item_tok, fill], axis=1)
    perm = np.argsort(keys, axis=1, kind="stable")
    ids[:, off : off + doc_tokens] = np.take_along_axis(toks, perm, axis=1)
    q0 = off + doc_tokens
    for b in range(batch):
        if independent:
            asked = rng.integers(0, facts, size=queries)
        else:
            asked = np.concatenate([rng.permutation(facts) for _ in range(-(-queries // facts))])[:queries]
        for j, f in enumerate(asked):
            ids[b, q0 + 4 * j : q0 + 4 * j + 4] = (QRY, names[b, f], vals[b, f], EOS)
            targets[b, 2 * j] = vals[b, f]
            targets[b, 2 * j + 1] = EOS
    rows = np.empty(2 * queries, dtype=np.int64)
    rows[0::2] = q0 + 4 * np.arange(queries) + 1  # the K row predicts V
    rows[1::2] = q0 + 4 * np.arange(queries) + 2  # the V row predicts </s>
    return Batch(ids, rows, targets, facts, queries)


def sample_copy_batch(rng: np.random.Generator, batch: int, words: int, bos: bool = True) -> Batch:
    """A warm-up batch for the base: `[bos] w_1 .. w_m recall w_1 .. w_m` with m random words of the
    language (names, numbers, filler); every word of the second copy is scored. Predicting w_(i+1) there
    is the step a question needs (find the earlier occurrence of the current word, copy the word after
    it), asked m times per sequence instead of once per fact. `words` must be even."""
    assert words % 2 == 0
    w = rng.integers(QRY + 1, VOCAB_SIZE, size=(batch, words))
    off = 1 if bos else 0
    ids = np.empty((batch, off + 2 * words + 1), dtype=np.int64)
    if bos:
        ids[:, 0] = BOS
    ids[:, off : off + words] = w
    ids[:, off + words] = QRY
    ids[:, off + words + 1 :] = w
    rows = off + words + np.arange(words)  # the `recall` row predicts w_1, the second copy's w_i row predicts w_(i+1)
    return Batch(ids, rows, w.copy(), 0, words // 2)


# (tokens, depth, seed, facts, distractors)
SAMPLE_CASES = [
    (2, 0.0, 0, 1, 0), (40, 0.25, 3, 1, 0), (300, 0.5, 7, 1, 0), (1000, 1.0, 12, 1, 0), (2500, 0.1, 4242, 1, 0),
    (4000, 0.9, 2**31 + 5, 1, 0), (9, 0.0, 5, 4, 1), (64, 1.0, 6, 4, 4), (777, 0.3, 99, 6, 3), (3000, 0.75, 2024, 4, 4),
]


def write_samples(path: str):
    """Token ids that this module gives for generated documents, for test/demo to compare with the JS
    tokenizer and generator (fixtures/demo/python-samples.json)."""
    out = []
    for tokens, depth, seed, facts, distractors in SAMPLE_CASES:
        d = make_needle_document(tokens, depth, seed, facts, distractors)
        out.append(
            {
                "tokens": tokens,
                "depth": depth,
                "seed": seed,
                "facts": [[f.key, f.value, f.index] for f in d.facts],
                "distractors": [[f.key, f.index] for f in d.distractors],
                "question": d.question,
                "answer": d.answer,
                "needle_index": d.needle_index,
                "doc_ids": encode_words(d.text),
                "question_ids": encode_words(d.question),
                "answer_ids": [ID[d.value], EOS],
            }
        )
    with open(path, "w") as f:
        f.write("[\n" + ",\n".join(json.dumps(x, separators=(",", ":")) for x in out) + "\n]\n")


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3 or sys.argv[1] != "--samples":
        print("usage: python3 language.py --samples fixtures/demo/python-samples.json")
        sys.exit(2)
    write_samples(sys.argv[2])
