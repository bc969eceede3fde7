"""The service's requests, validated before any work: sizes, lengths and spans.

Every limit is a field constraint, so an oversized or malformed request is a 422 that names the
field (`body.items.3.head.end`), and the limits show in the OpenAPI docs at /docs.
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from knnie.memory.memory import NAME

MAX_TEXTS = 64  # texts (or relation items) in one request
MAX_TEXT_CHARS = 20_000  # characters of one text
MAX_TOKENS = 2_000  # tokens of one pre-tokenised item
MAX_NEIGHBOURS = 20  # neighbours returned per decision
MAX_EXAMPLES = 500  # examples added to a memory in one request
MAX_NAME = 200  # characters of a label, type, model, memory or source name

Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT_CHARS)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME)]
Neighbours = Annotated[int, Field(ge=0, le=MAX_NEIGHBOURS, description="Memory entries to return per decision.")]
ModelName = Annotated[str | None, Field(description="A served model's name (see /health); may be left out when "
                                                    "the server has one model of the task.")]


class Strict(BaseModel):
    """Unknown fields are errors: a misspelt field is reported, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class SpanIn(Strict):
    """An entity mention: [start, end) in characters of `text`, or in tokens of `tokens`."""

    start: int = Field(ge=0)
    end: int = Field(ge=1)
    type: Name | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be greater than start ({self.start})")
        return self


class RelationItem(Strict):
    """A sentence and its head and tail: raw `text` with character spans, or `tokens` with token spans."""

    text: Text | None = None
    tokens: list[Token] | None = Field(None, min_length=1, max_length=MAX_TOKENS)
    head: SpanIn
    tail: SpanIn

    @model_validator(mode="after")
    def _spans_fit(self) -> Self:
        """Exactly one of text and tokens; token spans inside the tokens and apart (character spans
        are checked when the text is tokenised, which also knows word edges)."""
        if (self.text is None) == (self.tokens is None):
            raise ValueError("give either 'text' (character spans) or 'tokens' (token spans)")
        if self.tokens is not None:
            for name, span in (("head", self.head), ("tail", self.tail)):
                if span.end > len(self.tokens):
                    raise ValueError(f"{name} [{span.start}, {span.end}) out of range for {len(self.tokens)} tokens")
            if self.head.start < self.tail.end and self.tail.start < self.head.end:
                raise ValueError(f"head [{self.head.start}, {self.head.end}) and tail [{self.tail.start}, "
                                 f"{self.tail.end}) overlap")
        return self


class LabelledRelation(RelationItem):
    """A relation item with its label, to be remembered."""

    label: Name


class TaggedItem(Strict):
    """A tokenised sentence with one BIO tag per token, to be remembered."""

    tokens: list[Token] = Field(min_length=1, max_length=MAX_TOKENS)
    tags: list[Name]

    @model_validator(mode="after")
    def _one_tag_per_token(self) -> Self:
        if len(self.tags) != len(self.tokens):
            raise ValueError(f"{len(self.tags)} tags for {len(self.tokens)} tokens")
        return self


def _not_blank(texts: list[str]) -> list[str]:
    for i, text in enumerate(texts):
        if not text.strip():
            raise ValueError(f"text {i} is blank: nothing to read")
    return texts


class TextsRequest(Strict):
    texts: list[Text] = Field(min_length=1, max_length=MAX_TEXTS)
    neighbours: Neighbours = 0
    _blank = field_validator("texts")(_not_blank)


class EntitiesRequest(TextsRequest):
    """Find the entities of each text."""

    model: ModelName = None


class ExtractRequest(TextsRequest):
    """Entities, then the relations between them, of each text (a NER model and a relation model)."""

    ner: ModelName = None
    re: ModelName = None
    window: int = Field(0, ge=0, le=3, description="Also pair mentions this many sentences apart.")


class RelationsRequest(Strict):
    """The relation of each given head and tail."""

    model: ModelName = None
    items: list[RelationItem] = Field(min_length=1, max_length=MAX_TEXTS)
    neighbours: Neighbours = 0


class MemoryAddRequest(Strict):
    """Labelled examples to add to a memory of a model: `relations` for a relation model, `sentences`
    for a NER model. They are tagged with `source`, which `/memory/remove` takes to undo the addition."""

    model: ModelName = None
    memory: Name = Field("live", pattern=NAME.pattern)
    source: Name = "added"
    relations: list[LabelledRelation] | None = Field(None, min_length=1, max_length=MAX_EXAMPLES)
    sentences: list[TaggedItem] | None = Field(None, min_length=1, max_length=MAX_EXAMPLES)

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.relations is None) == (self.sentences is None):
            raise ValueError("give either 'relations' (for a relation model) or 'sentences' (for a NER model)")
        return self


class MemoryRemoveRequest(Strict):
    """Remove every entry added with `source` (from memory `memory`, or from all)."""

    model: ModelName = None
    source: Name
    memory: Name | None = Field(None, pattern=NAME.pattern)
