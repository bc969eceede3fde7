"""The shared data model: every reader produces these, every task consumes them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

NO_RELATION = "no_relation"  # the label of an entity pair that no relation links


@dataclass(frozen=True)
class Span:
    """A token span [start, end) with an optional entity type: a gold entity, the head or tail of a
    relation, a predicted entity. A span found in text may carry its character offsets
    [char_start, char_end), a predicted one its score (the mean probability of its words' tags) and
    the memory entries behind it (those of its first word). Two spans are equal when their tokens
    and type are: the rest describes a span, it does not make it another one."""

    start: int
    end: int
    type: str | None = None
    char_start: int | None = field(default=None, compare=False)
    char_end: int | None = field(default=None, compare=False)
    score: float | None = field(default=None, compare=False)
    neighbours: tuple[Neighbour, ...] = field(default=(), compare=False, repr=False)

    def overlaps(self, other: Span) -> bool:
        return self.start < other.end and other.start < self.end


@dataclass
class RelationExample:
    """One candidate relation: a tokenised sentence, head and tail spans, and its label.

    `label` is None for unlabelled input. `char_offsets` (one (start, end) per token)
    and `text` are kept when the input came as raw text, so predictions can point back
    into it. `source` says where the example was read ("file:line"), for error messages.
    """

    tokens: list[str]
    head: Span
    tail: Span
    label: str | None = None
    text: str | None = None
    char_offsets: list[tuple[int, int]] | None = None
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def sentence(self) -> str:
        return self.text if self.text is not None else " ".join(self.tokens)

    def located(self) -> tuple[str, list[tuple[int, int]]]:
        """The text and each token's character offsets in it: the original ones when the
        example came as text, else the tokens joined by spaces."""
        return located(self.tokens, self.text, self.char_offsets)

    def mention(self, span: Span) -> str:
        """The span as it reads in the text (not its tokens re-joined)."""
        return self.span_row(span)["text"]

    def span_row(self, span: Span) -> dict[str, Any]:
        """{"text", "start", "end", "type"} of a span, in characters of `located()`'s text."""
        text, offsets = self.located()
        start, end = offsets[span.start][0], offsets[span.end - 1][1]
        return {"text": text[start:end], "start": start, "end": end, "type": span.type}

    def to_row(self) -> dict[str, Any]:
        """The example as users read it: {"text", "head", "tail"}, the spans as `span_row` gives them."""
        return {"text": self.located()[0], "head": self.span_row(self.head), "tail": self.span_row(self.tail)}

    def to_dict(self) -> dict[str, Any]:
        """A compact JSON-able record (a memory's record of the example), with the original
        text and its token offsets when the example came as text."""
        d = {
            "tokens": self.tokens,
            "head": {"start": self.head.start, "end": self.head.end, "type": self.head.type},
            "tail": {"start": self.tail.start, "end": self.tail.end, "type": self.tail.type},
            "label": self.label,
        }
        if self.text is not None:
            d["text"] = self.text
            if self.char_offsets is not None:
                d["char_offsets"] = [list(o) for o in self.char_offsets]
        return d

    def to_record(self) -> dict[str, Any]:
        """The example as a record that `read_relations` reads back as an equal example: knnie's plain format
        (character offsets into the original text) when it came as text, else OpenNRE's token format, so its
        words are kept exactly; with its entity types, label and `meta` ids."""
        spans = {"head": self.head, "tail": self.tail}
        if self.text is not None and self.char_offsets is not None:
            record: dict[str, Any] = {"text": self.text}
            record.update({name: {"start": self.char_offsets[s.start][0], "end": self.char_offsets[s.end - 1][1]}
                           | ({"type": s.type} if s.type is not None else {}) for name, s in spans.items()})
            key = "label"
        else:
            record = {"token": self.tokens}
            record.update({name[0]: {"pos": [s.start, s.end]} | ({"type": s.type} if s.type is not None else {})
                           for name, s in spans.items()})
            key = "relation"
        if self.label is not None:
            record[key] = self.label
        return record | {k: v for k, v in self.meta.items() if k in ("id", "doc_key")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RelationExample:
        """Read `to_dict`'s record; in a record written before offsets were kept, the tokens
        are found in the text again."""
        tokens, text = list(d["tokens"]), d.get("text")
        if d.get("char_offsets") is not None:
            offsets = [(int(a), int(b)) for a, b in d["char_offsets"]]
        else:
            offsets = _find_tokens(tokens, text) if text is not None else None
        return cls(tokens=tokens, head=Span(**d["head"]), tail=Span(**d["tail"]), label=d.get("label"),
                   text=text if offsets is not None else None, char_offsets=offsets)


@dataclass
class Neighbour:
    """A memory entry consulted for a prediction: the memory's name, the entry's label, its distance
    to the query, and its record (a relation example's `RelationExample.to_dict`, or a training
    word's {"text": its sentence, "word": its index, "tag"})."""

    memory: str
    label: str
    distance: float
    record: dict[str, Any]

    def to_row(self) -> dict[str, Any]:
        """The entry as users read it: the example behind it (a relation example's original text and
        mentions, a word's sentence and index), its label, distance and memory."""
        r = self.record
        held = RelationExample.from_dict(r).to_row() if "tokens" in r else {k: r[k] for k in ("text", "word") if k in r}
        return {**held, "label": self.label, "distance": self.distance, "memory": self.memory}


def located(tokens: list[str], text: str | None, char_offsets: list[tuple[int, int]] | None
            ) -> tuple[str, list[tuple[int, int]]]:
    """A text and each token's character offsets in it: the original ones when there are, else
    the tokens joined by spaces."""
    if text is not None and char_offsets is not None:
        return text, char_offsets
    return " ".join(tokens), joined_offsets(tokens)


def joined_offsets(tokens: list[str], sep: int = 1) -> list[tuple[int, int]]:
    """Character offsets of tokens joined with `sep` spaces."""
    out, at = [], 0
    for t in tokens:
        out.append((at, at + len(t)))
        at += len(t) + sep
    return out


def _find_tokens(tokens: list[str], text: str) -> list[tuple[int, int]] | None:
    """Where each token lies in `text`, searched left to right; None if one is not there."""
    out, at = [], 0
    for t in tokens:
        start = text.find(t, at)
        if start < 0:
            return None
        at = start + len(t)
        out.append((start, at))
    return out


@dataclass
class TaggedSentence:
    """A tokenised sentence with one BIO tag per token (None for unlabelled input).

    `text` and `char_offsets` are kept when the input came as raw text, so that entity
    spans can be given in characters too. `source` is the file and `lines` the 1-based
    line of each token there (column files have one token a line; a JSONL record gives
    all its tokens the record's line), so errors can point at the exact line.
    """

    tokens: list[str]
    tags: list[str] | None = None
    text: str | None = None
    char_offsets: list[tuple[int, int]] | None = None
    source: str | None = None
    lines: list[int] | None = None

    @property
    def sentence(self) -> str:
        return self.text if self.text is not None else " ".join(self.tokens)

    def line(self, i: int = 0) -> int | None:
        """The line of token i in `source` (None when unknown)."""
        return self.lines[min(i, len(self.lines) - 1)] if self.lines else None
