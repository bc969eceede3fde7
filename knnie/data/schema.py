"""The shared data model: every reader produces these, every task consumes them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Span:
    """A token span [start, end) with an optional entity type."""

    start: int
    end: int
    type: str | None = None

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

    def mention(self, span: Span) -> str:
        return " ".join(self.tokens[span.start : span.end])

    def to_dict(self) -> dict[str, Any]:
        """A compact JSON-able record (used for memory metadata and predictions)."""
        d = {
            "tokens": self.tokens,
            "head": asdict(self.head),
            "tail": asdict(self.tail),
            "label": self.label,
        }
        if self.text is not None:
            d["text"] = self.text
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RelationExample:
        return cls(
            tokens=list(d["tokens"]), head=Span(**d["head"]), tail=Span(**d["tail"]),
            label=d.get("label"), text=d.get("text"),
        )


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
