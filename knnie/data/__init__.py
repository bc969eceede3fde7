"""Data model and readers."""

from knnie.data.readers import example_from_text, read_relations
from knnie.data.schema import NO_RELATION, Neighbour, RelationExample, Span, TaggedSentence
from knnie.data.tagged import read_sentences, read_tagged, sentence_from_text

__all__ = [
    "NO_RELATION", "Neighbour", "RelationExample", "Span", "TaggedSentence", "example_from_text", "read_relations",
    "read_sentences", "read_tagged", "sentence_from_text",
]
