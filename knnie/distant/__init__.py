"""Distant supervision: KB triples × raw text → relation examples."""

from knnie.distant.builder import (
    DocumentMatcher,
    DSSummary,
    Matcher,
    Matches,
    Triple,
    build_ds,
    deduplicate,
    iter_documents,
    read_aliases,
    read_triples,
    write_ds,
)
from knnie.distant.parallel import build_ds_ray

__all__ = ["DSSummary", "DocumentMatcher", "Matcher", "Matches", "Triple", "build_ds", "build_ds_ray", "deduplicate",
           "iter_documents", "read_aliases", "read_triples", "write_ds"]
