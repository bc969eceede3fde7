"""Data model and readers."""

from knnie.data.descriptions import RelationType, read_relation_types
from knnie.data.document import Document, Relation
from knnie.data.readers import example_from_text, read_documents, read_relations
from knnie.data.schema import NO_RELATION, Neighbour, RelationExample, Span, TaggedSentence
from knnie.data.tagged import read_sentences, read_tagged, sentence_from_text

__all__ = [
    "NO_RELATION", "Document", "Neighbour", "Relation", "RelationExample", "RelationType", "Span", "TaggedSentence",
    "example_from_text", "read_documents", "read_relation_types", "read_relations", "read_sentences", "read_tagged",
    "sentence_from_text",
]
