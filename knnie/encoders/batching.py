"""How units (tokenised examples, windows of words, texts) are grouped into batches and padded."""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch

BUCKET_CHUNK = 50  # batches per shuffled chunk sorted by length: similar lengths, yet varied batches


def batch_order(lengths: Sequence[int], batch_size: int, shuffle: bool = False, seed: int = 0,
                buckets: bool = True) -> list[list[int]]:
    """The example indices of each batch, every index exactly once.

    Without `shuffle` (inference) the examples are sorted by length, so padding is minimal.
    With it (training) they are shuffled by `seed`; with `buckets`, each chunk of BUCKET_CHUNK
    batches is then sorted by length and the batches shuffled, so a batch pads to a length
    close to its own examples' (random batches pad to the longest of a random sample, which
    costs most on long-tailed data) while every epoch still sees a fresh order."""
    order = list(range(len(lengths)))
    if not shuffle:
        return _cut(sorted(order, key=lengths.__getitem__), batch_size)
    rng = random.Random(seed)
    rng.shuffle(order)
    if not buckets:
        return _cut(order, batch_size)
    span = batch_size * BUCKET_CHUNK
    bucketed = [i for s in range(0, len(order), span) for i in sorted(order[s : s + span], key=lengths.__getitem__)]
    batches = _cut(bucketed, batch_size)
    rng.shuffle(batches)
    return batches


def _cut(order: list[int], size: int) -> list[list[int]]:
    return [order[s : s + size] for s in range(0, len(order), size)]


def padded(rows: list[list[int]], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-token ids (B, longest) padded with `pad`, and the attention mask."""
    ids = torch.full((len(rows), max(map(len, rows))), pad, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r, row in enumerate(rows):
        ids[r, : len(row)] = torch.tensor(row)
        mask[r, : len(row)] = 1
    return ids, mask
