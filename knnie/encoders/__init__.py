"""Encoder loading and the entity-marker input encoding shared by the RE tasks."""

from knnie.encoders.loading import DEFAULT_ENCODER, fingerprint, load_encoder, resolve_encoder

__all__ = ["DEFAULT_ENCODER", "fingerprint", "load_encoder", "resolve_encoder"]
