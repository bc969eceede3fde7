"""Distant supervision: KB triples × raw text → relation examples."""

from knnie.distant.builder import (
    DSSummary,
    Matcher,
    Triple,
    build_ds,
    iter_documents,
    read_aliases,
    read_triples,
    write_ds,
)

__all__ = ["DSSummary", "Matcher", "Triple", "build_ds", "iter_documents", "read_aliases", "read_triples", "write_ds"]
