"""The document: one text as every task sees it.

Readers produce documents, the entity recognizer fills their entities
(`EntityRecognizer.predict_documents`), and relation extraction reads the examples of their
entity pairs (`Document.relation_examples`): text → entities → relations on one object.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from knnie.data.schema import NO_RELATION, RelationExample, Span, TaggedSentence, located
from knnie.data.tagged import bio_spans, bio_tags
from knnie.data.tokenize import split_text
from knnie.errors import DataError


@dataclass(frozen=True)
class Relation:
    """A relation between two entity spans of a document, from `head` to `tail`."""

    head: Span
    tail: Span
    label: str


@dataclass
class Document:
    """A tokenised text, its entity spans and the relations between them.

    `text` and `char_offsets` (one (start, end) per token) are kept when the input came as text;
    a document read as tokens (a DyGIE sentence) has neither, and `located()` joins its tokens by
    spaces (the character offsets of its entities, where they have them, point into that text).
    `relations` is None when the document carries no relation annotation (raw text): its entity
    pairs are then unlabelled, where an annotated document labels the pairs it does not relate
    `NO_RELATION`. `source` says where it was read ("file:line"); `meta` (a DyGIE document's key
    and sentence index) goes to every relation example.
    """

    tokens: list[str]
    text: str | None = None
    char_offsets: list[tuple[int, int]] | None = None
    entities: list[Span] = field(default_factory=list)
    relations: list[Relation] | None = None
    source: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_text(cls, text: str, chars: bool = False, source: str | None = None) -> Document:
        """A document of raw text, split into words and punctuation (into characters with `chars`,
        as for a model trained on character-tokenised text), with character offsets."""
        tokens, offsets = split_text(text, chars)
        if not tokens:
            raise DataError("empty text: no word to read", path=source, field="text")
        return cls(tokens, text, offsets, source=source)

    @classmethod
    def from_tagged(cls, sentence: TaggedSentence) -> Document:
        """The entities of a tagged sentence's BIO tags, as spans with character offsets when the
        sentence has them; a sentence carries no relation annotation."""
        offsets = sentence.char_offsets
        entities = [e if offsets is None else Span(e.start, e.end, e.type, offsets[e.start][0], offsets[e.end - 1][1])
                    for e in bio_spans(sentence.tags or [])]
        where = ":".join(str(p) for p in (sentence.source, sentence.line()) if p is not None) or None
        return cls(list(sentence.tokens), sentence.text, sentence.char_offsets, entities, source=where)

    def tagged(self, tags: bool = True) -> TaggedSentence:
        """The document as the tagger reads it: its tokens, offsets and (with `tags`) the BIO tags of
        its entities, which must have types and must not overlap."""
        bio = bio_tags(self.entities, len(self.tokens), self.source) if tags else None
        return TaggedSentence(list(self.tokens), bio, self.text, self.char_offsets, self.source)

    def located(self) -> tuple[str, list[tuple[int, int]]]:
        """The text and each token's character offsets in it (the tokens joined by spaces when the
        document was read as tokens)."""
        return located(self.tokens, self.text, self.char_offsets)

    def mention(self, span: Span) -> str:
        """A span as it reads in the text."""
        text, offsets = self.located()
        return text[offsets[span.start][0] : offsets[span.end - 1][1]]

    def relation_examples(self, negatives: bool = True) -> list[RelationExample]:
        """One example for every ordered pair of entities that do not overlap, in entity order: what
        relation extraction reads. Its label is the relation between the two spans (matched by
        tokens), `NO_RELATION` for a pair the annotation does not relate (left out without
        `negatives`), or None when the document carries no relation annotation."""
        gold = None if self.relations is None else {
            (r.head.start, r.head.end, r.tail.start, r.tail.end): r.label for r in self.relations}
        examples = []
        for h in self.entities:
            for t in self.entities:
                if h == t or h.overlaps(t):
                    continue
                label = None if gold is None else gold.get((h.start, h.end, t.start, t.end))
                if gold is not None and label is None:
                    if not negatives:
                        continue
                    label = NO_RELATION
                examples.append(RelationExample(self.tokens, h, t, label, self.text, self.char_offsets, self.source,
                                                dict(self.meta)))
        return examples
