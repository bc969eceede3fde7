"""Data model and readers."""

from knnie.data.readers import NO_RELATION, example_from_text, read_relations
from knnie.data.schema import RelationExample, Span

__all__ = ["NO_RELATION", "RelationExample", "Span", "example_from_text", "read_relations"]
