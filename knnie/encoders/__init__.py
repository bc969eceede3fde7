"""Encoders, the representers that turn examples into vectors, entity-marker schemes and devices."""

from knnie.encoders.device import resolve_device
from knnie.encoders.loading import DEFAULT_ENCODER, fingerprint, load_encoder, resolve_encoder
from knnie.encoders.representer import RelationRepresenter, Representer, TextRepresenter, WordRepresenter

__all__ = [
    "DEFAULT_ENCODER", "RelationRepresenter", "Representer", "TextRepresenter", "WordRepresenter", "fingerprint",
    "load_encoder", "resolve_device", "resolve_encoder",
]
