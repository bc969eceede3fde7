"""Typed entity markers (PURE): ``[H:PER] Obama [/H:PER] ... [T:LOC] Hawaii [/T:LOC]``.

Markers are special tokens added to the tokenizer; the relation vector reads the encoder's
hidden states at the two start markers. Entity types seen in training get typed markers;
untyped data, or a type never seen in training, uses ``[H]``/``[T]``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from knnie.data.schema import RelationExample
from knnie.errors import DataError

log = logging.getLogger(__name__)


def marker(role: str, typ: str | None, end: bool = False) -> str:
    return f"[{'/' if end else ''}{role}{':' + typ if typ else ''}]"


def marker_tokens(entity_types: list[str]) -> list[str]:
    """Every marker a model with these entity types needs."""
    return [marker(r, t, e) for t in [None, *entity_types] for r in ("H", "T") for e in (False, True)]


@dataclass
class EncodedBatch:
    input_ids: list[list[int]]
    head_pos: list[int]
    tail_pos: list[int]


def with_markers(ex: RelationExample, entity_types: set[str]) -> tuple[list[str], int, int]:
    """The example's words with markers around head and tail, and the word indices of the
    head and tail start markers."""
    spans = [("H", ex.head), ("T", ex.tail)]
    words: list[str] = []
    starts = {}
    for i, tok in enumerate(ex.tokens):
        for role, s in spans:
            if s.start == i:
                starts[role] = len(words)
                words.append(marker(role, s.type if s.type in entity_types else None))
        words.append(tok)
        for role, s in spans:
            if s.end - 1 == i:
                words.append(marker(role, s.type if s.type in entity_types else None, end=True))
    return words, starts["H"], starts["T"]


def encode(tokenizer, examples: list[RelationExample], entity_types: set[str], max_length: int) -> EncodedBatch:
    """Tokenise examples with markers; a sentence over `max_length` sub-words is cut to a
    window around its entities (never through them), and refused if the entities alone
    do not fit."""
    batch = EncodedBatch([], [], [])
    for ex in examples:
        words, h, t = with_markers(ex, entity_types)
        enc = tokenizer(words, is_split_into_words=True)
        if len(enc["input_ids"]) > max_length:
            lo, hi = _window(tokenizer, ex, enc.word_ids(), len(words), min(h, t), max(h, t), max_length)
            words, h, t = words[lo:hi], h - lo, t - lo
            enc = tokenizer(words, is_split_into_words=True)
        first_piece = {}
        for pos, w in enumerate(enc.word_ids()):
            if w is not None:
                first_piece.setdefault(w, pos)
        batch.input_ids.append(enc["input_ids"])
        batch.head_pos.append(first_piece[h])
        batch.tail_pos.append(first_piece[t])
    return batch


def _window(
    tokenizer, ex: RelationExample, word_ids: list[int | None], n_words: int, first: int, second: int,
    max_length: int,
) -> tuple[int, int]:
    """The widest word window [lo, hi) within the limit that holds both entities whole."""
    counts = [0] * n_words
    for w in word_ids:
        if w is not None:
            counts[w] += 1
    budget = max_length - tokenizer.num_special_tokens_to_add()
    second_entity = ex.tail if ex.tail.start > ex.head.start else ex.head
    lo, hi = first, second + (second_entity.end - second_entity.start) + 2  # through its end marker
    used = sum(counts[lo:hi])
    if used > budget:
        raise DataError(
            f"head and tail span {used} sub-words together, more than the encoder's limit of "
            f"{max_length}", path=ex.source, field="tokens",
        )
    while True:
        grew = False
        if lo > 0 and used + counts[lo - 1] <= budget:
            lo, used, grew = lo - 1, used + counts[lo - 1], True
        if hi < n_words and used + counts[hi] <= budget:
            hi, used, grew = hi + 1, used + counts[hi], True
        if not grew:
            break
    log.warning(
        "%s: %d sub-words exceed the limit of %d; kept a window of words %d..%d around the entities",
        ex.source or "example", sum(counts), max_length, lo, hi,
    )
    return lo, hi
