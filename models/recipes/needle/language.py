"""The needle language: vocabulary, token ids, and document generation.

A document is filler words with one planted pair `<Name> <number>` somewhere in it; the question that
follows it is `recall <Name>` and the answer is `<number>` then end of sequence:

    <s> the house Alice 417 over ... quiet
    recall Alice            -> 417 </s>

`make_needle_document` is the same algorithm as `makeNeedleDocument` in src/demo/ (TypeScript): the same
seed gives the same text, word for word (mulberry32 PRNG, see `Mulberry32`). Training uses the faster,
equally distributed `sample_batch` (numpy).
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
class NeedleDocument:
    text: str
    question: str
    answer: str
    key: str
    value: str
    words: list[str]  # the document's words (its tokens), pair included
    needle_index: int  # index of the key word in `words`


def make_needle_document(tokens: int, depth: float, seed: int) -> NeedleDocument:
    """Same contract as makeNeedleDocument in src/demo/needle.ts."""
    if not (isinstance(tokens, int) and tokens >= 2):
        raise ValueError("tokens must be an integer >= 2")
    if not (0.0 <= depth <= 1.0):
        raise ValueError("depth must be in [0, 1]")
    rng = Mulberry32(seed)
    key = KEYS[rng.int(N_KEYS)]
    value = VALUES[rng.int(N_VALUES)]
    n_fill = tokens - 2
    at = math.floor(depth * n_fill + 0.5)
    fill = [FILLERS[rng.int(N_FILLERS)] for _ in range(n_fill)]
    words = fill[:at] + [key, value] + fill[at:]
    lines = [" ".join(words[i : i + WORDS_PER_LINE]) for i in range(0, len(words), WORDS_PER_LINE)]
    return NeedleDocument(
        text="\n".join(lines) + "\n",
        question=f"{QUERY} {key}",
        answer=value,
        key=key,
        value=value,
        words=words,
        needle_index=at,
    )


def encode_words(text: str) -> list[int]:
    """The tokenizer, for text of this language: whitespace split, one id per word, <unk> otherwise."""
    return [ID.get(w, UNK) for w in text.split()]


def prompt_ids(doc_text: str, question: str, bos: bool = True) -> list[int]:
    """What ctx feeds a model without a chat template: [bos] document, then the question."""
    return ([BOS] if bos else []) + encode_words(doc_text) + encode_words(question)


def sample_batch(rng: np.random.Generator, batch: int, doc_tokens: int, bos: bool = True, depth=None):
    """A training batch: ids [B, T] = [bos] doc (doc_tokens words, pair included) recall K V, and the
    targets: V predicted at the K row, </s> at the V row. Returns (ids, value_ids, key_ids, needle_pos)."""
    n_fill = doc_tokens - 2
    fill = rng.integers(FIL0, FIL0 + N_FILLERS, size=(batch, n_fill))
    keys = rng.integers(KEY0, KEY0 + N_KEYS, size=batch)
    vals = rng.integers(VAL0, VAL0 + N_VALUES, size=batch)
    if depth is None:
        at = rng.integers(0, n_fill + 1, size=batch)
    else:
        at = np.full(batch, math.floor(depth * n_fill + 0.5))
    off = 1 if bos else 0
    T = off + doc_tokens + 3
    ids = np.empty((batch, T), dtype=np.int64)
    if bos:
        ids[:, 0] = BOS
    for b in range(batch):
        a = at[b]
        row = ids[b, off : off + doc_tokens]
        row[:a] = fill[b, :a]
        row[a] = keys[b]
        row[a + 1] = vals[b]
        row[a + 2 :] = fill[b, a:]
    ids[:, -3] = QRY
    ids[:, -2] = keys
    ids[:, -1] = vals
    return ids, vals, keys, at


SAMPLE_CASES = [(2, 0.0, 0), (40, 0.25, 3), (300, 0.5, 7), (1000, 1.0, 12), (2500, 0.1, 4242), (4000, 0.9, 2**31 + 5)]


def write_samples(path: str):
    """Token ids that this module gives for generated documents, for test/demo to compare with the JS
    tokenizer and generator (fixtures/demo/python-samples.json)."""
    out = []
    for tokens, depth, seed in SAMPLE_CASES:
        d = make_needle_document(tokens, depth, seed)
        out.append(
            {
                "tokens": tokens,
                "depth": depth,
                "seed": seed,
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
