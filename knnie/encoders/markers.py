"""Entity-marker schemes: how the head and tail of a relation example are shown to the encoder,
and which positions the relation vector reads. Each scheme is a small strategy class:

* `TypedMarkers` (PURE, the default): ``[H:PER] Obama [/H:PER] ... [T:LOC] Hawaii [/T:LOC]``;
  the vector reads the two start markers.
* `EntityMask`: each mention is replaced by one typed mask token, ``[H:PER] ... [T:LOC]``, which
  the vector reads (the model never sees the entities' words).

Markers are special tokens added to the tokenizer. Entity types seen in training get typed
markers; untyped data, or a type never seen in training, uses ``[H]``/``[T]``. Sentences over
the encoder's limit are cut to a window of words around both entities.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from knnie.data.schema import RelationExample
from knnie.errors import DataError, KnnieError

log = logging.getLogger(__name__)


def marker(role: str, typ: str | None, end: bool = False) -> str:
    return f"[{'/' if end else ''}{role}{':' + typ if typ else ''}]"


def marker_tokens(entity_types: list[str]) -> list[str]:
    """Every marker a model with these entity types needs (typed markers)."""
    return [marker(r, t, e) for t in [None, *entity_types] for r in ("H", "T") for e in (False, True)]


class EntitiesTooFarApart(DataError):
    """An example whose head and tail alone exceed the encoder's limit: no window can hold it."""

    def __init__(self, message: str, *, needed: int, path: str | None = None) -> None:
        super().__init__(message, path=path, field="tokens")
        self.needed = needed  # sub-words from the first entity's start marker to the second's end marker


@dataclass
class EncodedBatch:
    input_ids: list[list[int]]
    head_pos: list[int]
    tail_pos: list[int]


@dataclass
class Marked:
    """An example's words as the encoder sees them: `head` and `tail` index the words the vector
    reads, `end` is the word after the later entity (a window must keep [min(head, tail), end))."""

    words: list[str]
    head: int
    tail: int
    end: int
    origins: list[int | None] | None = None  # the token of the example each word is (None: a marker), when known


class MarkerScheme(ABC):
    """How entities are marked in the encoder's input; saved by name in a relation model's config."""

    name: ClassVar[str]  # as saved in the config
    representation: ClassVar[str]  # what the vector reads; part of the fingerprint memories are checked against

    @abstractmethod
    def tokens(self, entity_types: list[str]) -> list[str]:
        """The special tokens the tokenizer needs for these entity types."""

    @abstractmethod
    def mark(self, ex: RelationExample, entity_types: set[str]) -> Marked:
        """The example's words with its entities marked."""


class TypedMarkers(MarkerScheme):
    """Start and end markers around each entity (typed when the type is known); reads the start markers."""

    name = "typed"
    representation = "re: encoder states at the head and tail start markers"

    def tokens(self, entity_types: list[str]) -> list[str]:
        return marker_tokens(entity_types)

    def mark(self, ex: RelationExample, entity_types: set[str]) -> Marked:
        words, origins, h, t = typed_words(ex, entity_types)
        second = ex.tail if ex.tail.start > ex.head.start else ex.head
        return Marked(words, h, t, max(h, t) + (second.end - second.start) + 2, origins)  # through its end marker


class EntityMask(MarkerScheme):
    """Each mention replaced by one typed mask token (``[H:PER]``, ``[T]``), which the vector reads."""

    name = "entity-mask"
    representation = "re: encoder states at the head and tail entity masks"

    def tokens(self, entity_types: list[str]) -> list[str]:
        return [marker(r, t) for t in [None, *entity_types] for r in ("H", "T")]

    def mark(self, ex: RelationExample, entity_types: set[str]) -> Marked:
        if ex.head.start < ex.tail.end and ex.tail.start < ex.head.end:
            raise DataError("head and tail overlap: one mask cannot stand for both", path=ex.source, field="tail")
        words: list[str] = []
        at = {}
        for i, tok in enumerate(ex.tokens):
            role, span = next(((r, s) for r, s in (("H", ex.head), ("T", ex.tail)) if s.start <= i < s.end),
                              (None, None))
            if role is None:
                words.append(tok)
            elif i == span.start:
                at[role] = len(words)
                words.append(marker(role, span.type if span.type in entity_types else None))
        return Marked(words, at["H"], at["T"], max(at.values()) + 1)


SCHEMES: dict[str, type[MarkerScheme]] = {s.name: s for s in (TypedMarkers, EntityMask)}
TYPED = TypedMarkers()


def marker_scheme(name: str) -> MarkerScheme:
    """The scheme saved under `name` in a config."""
    if name not in SCHEMES:
        raise KnnieError(f"unknown entity-marker scheme '{name}'; choose one of {', '.join(SCHEMES)}")
    return SCHEMES[name]()


def with_markers(ex: RelationExample, entity_types: set[str]) -> tuple[list[str], int, int]:
    """The example's words with typed markers around head and tail, and the word indices of the
    head and tail start markers."""
    words, _, h, t = typed_words(ex, entity_types)
    return words, h, t


def typed_words(ex: RelationExample, entity_types: set[str]) -> tuple[list[str], list[int | None], int, int]:
    """`with_markers`, and the token of `ex` each word is (None for a marker): what a word-level
    objective (span masking) needs to find the example's spans among the marked words."""
    spans = [("H", ex.head), ("T", ex.tail)]
    words: list[str] = []
    origins: list[int | None] = []
    starts = {}
    for i, tok in enumerate(ex.tokens):
        for role, s in spans:
            if s.start == i:
                starts[role] = len(words)
                words.append(marker(role, s.type if s.type in entity_types else None))
                origins.append(None)
        words.append(tok)
        origins.append(i)
        for role, s in spans:
            if s.end - 1 == i:
                words.append(marker(role, s.type if s.type in entity_types else None, end=True))
                origins.append(None)
    return words, origins, starts["H"], starts["T"]


def encode_one(tokenizer, ex: RelationExample, entity_types: set[str], max_length: int,
               scheme: MarkerScheme = TYPED) -> tuple[list[int], int, int, bool]:
    """Sub-word ids of one example with its entities marked, the positions the vector reads for
    head and tail, and whether it was cut to a window (it was over `max_length`). Raises
    `EntitiesTooFarApart` if the entities alone do not fit."""
    ids, _, h, t, windowed = encode_marked(tokenizer, ex, scheme.mark(ex, entity_types), max_length)
    return ids, h, t, windowed


def encode_marked(tokenizer, ex: RelationExample, marked: Marked, max_length: int
                  ) -> tuple[list[int], list[int | None], int, int, bool]:
    """`encode_one` of words already marked, with the marked word each sub-word comes from (None for
    the tokenizer's own special tokens), counted in all of `marked.words` even when windowed."""
    words, h, t, lo = marked.words, marked.head, marked.tail, 0
    enc = tokenizer(words, is_split_into_words=True)
    windowed = len(enc["input_ids"]) > max_length
    if windowed:
        lo, hi = _window(tokenizer, ex, enc.word_ids(), len(words), min(h, t), marked.end, max_length)
        words, h, t = words[lo:hi], h - lo, t - lo
        enc = tokenizer(words, is_split_into_words=True)
    first_piece = {}
    for pos, w in enumerate(enc.word_ids()):
        if w is not None:
            first_piece.setdefault(w, pos)
    word_ids = [None if w is None else w + lo for w in enc.word_ids()]
    return enc["input_ids"], word_ids, first_piece[h], first_piece[t], windowed


def encode(tokenizer, examples: list[RelationExample], entity_types: set[str], max_length: int,
           scheme: MarkerScheme = TYPED) -> EncodedBatch:
    """Tokenise examples with their entities marked by `scheme`; a sentence over `max_length` sub-words is cut to a
    window around its entities (never through them), with one warning for all the windowed
    examples of the call. Examples whose entities alone do not fit are refused all at once,
    the error saying how many and where (`too_long` finds them without refusing)."""
    batch = EncodedBatch([], [], [])
    refused, windowed = {}, []
    for i, ex in enumerate(examples):
        try:
            ids, h, t, cut = encode_one(tokenizer, ex, entity_types, max_length, scheme)
        except EntitiesTooFarApart as e:
            refused[i] = e
            continue
        if cut:
            windowed.append(_where(ex, i))
        batch.input_ids.append(ids)
        batch.head_pos.append(h)
        batch.tail_pos.append(t)
    if refused:
        raise refusal(refused, examples, max_length)
    if windowed:
        log.warning("%d of %d examples exceed the limit of %d sub-words; each was cut to a window of words "
                    "around its entities: %s", len(windowed), len(examples), max_length, first_few(windowed))
    return batch


def too_long(tokenizer, examples: list[RelationExample], entity_types: set[str], max_length: int,
             scheme: MarkerScheme = TYPED) -> dict[int, EntitiesTooFarApart]:
    """The examples `encode` would refuse, by index, each with its error."""
    out = {}
    for i, ex in enumerate(examples):
        try:
            encode_one(tokenizer, ex, entity_types, max_length, scheme)
        except EntitiesTooFarApart as e:
            out[i] = e
    return out


def refusal(refused: dict[int, EntitiesTooFarApart], examples: list[RelationExample],
            max_length: int) -> EntitiesTooFarApart:
    """One error for all the examples `too_long` found: the example's own error if there is
    one, else how many there are and where the first are."""
    if len(refused) == 1:
        return next(iter(refused.values()))
    return EntitiesTooFarApart(
        f"{len(refused)} of {len(examples)} examples have head and tail further apart than the encoder's limit of "
        f"{max_length} sub-words; fix or drop them: "
        + first_few([f"{_where(examples[i], i)} ({e.needed} sub-words)" for i, e in refused.items()]),
        needed=max(e.needed for e in refused.values()))


def first_few(items: list[str], n: int = 3) -> str:
    """The first n items, and how many more there are: for one-line summaries."""
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _where(ex: RelationExample, i: int) -> str:
    return ex.source or f"example {i}"


def _window(
    tokenizer, ex: RelationExample, word_ids: list[int | None], n_words: int, first: int, end: int,
    max_length: int,
) -> tuple[int, int]:
    """The widest word window [lo, hi) within the limit that holds the words [first, end) whole:
    both entities and their marks."""
    counts = [0] * n_words
    for w in word_ids:
        if w is not None:
            counts[w] += 1
    budget = max_length - tokenizer.num_special_tokens_to_add()
    lo, hi = first, end
    used = sum(counts[lo:hi])
    if used > budget:
        raise EntitiesTooFarApart(
            f"head and tail span {used} sub-words together, more than the encoder's limit of {max_length}",
            needed=used, path=ex.source,
        )
    while True:
        grew = False
        if lo > 0 and used + counts[lo - 1] <= budget:
            lo, used, grew = lo - 1, used + counts[lo - 1], True
        if hi < n_words and used + counts[hi] <= budget:
            hi, used, grew = hi + 1, used + counts[hi], True
        if not grew:
            break
    return lo, hi
