"""Training batches grouped by length (`batch_order`): complete, reproducible, and far less padded."""

from __future__ import annotations

import random

import numpy as np
import pytest

from knnie.encoders.batching import batch_order


def padding(lengths: list[int], batches: list[list[int]]) -> int:
    """Pad positions: each batch is as wide as its longest example."""
    return sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches)


def skewed(n: int, seed: int = 0) -> list[int]:
    """Long-tailed lengths like biomedical sentences: most short, a few very long."""
    return [int(x) for x in np.clip(np.random.default_rng(seed).lognormal(3.3, 0.6, n), 3, 512)]


@pytest.mark.parametrize("n", [0, 1, 31, 32, 1000, 3217])
@pytest.mark.parametrize("shuffle,buckets", [(False, True), (True, True), (True, False)])
def test_every_index_exactly_once_in_batches_of_at_most_the_size(n, shuffle, buckets):
    batches = batch_order(skewed(n), 32, shuffle, seed=3, buckets=buckets)
    assert sorted(i for b in batches for i in b) == list(range(n))
    assert all(0 < len(b) <= 32 for b in batches)
    assert sum(len(b) < 32 for b in batches) <= 1  # only one batch is partial


def test_same_seed_same_batches_other_seed_other_batches():
    lengths = skewed(2000)
    assert batch_order(lengths, 32, True, seed=7) == batch_order(lengths, 32, True, seed=7)
    assert batch_order(lengths, 32, True, seed=7) != batch_order(lengths, 32, True, seed=8)


def test_bucketed_batches_pad_far_less_than_random_ones():
    lengths = skewed(5000)
    bucketed = padding(lengths, batch_order(lengths, 32, True, seed=1))
    plain = padding(lengths, batch_order(lengths, 32, True, seed=1, buckets=False))
    assert bucketed < 0.15 * plain


def test_bucketed_epochs_stay_shuffled():
    """Bucketing must not turn training into a fixed short-to-long curriculum: the order of batch
    widths is not sorted, and the same example meets different neighbours in different epochs."""
    lengths = skewed(5000)
    first, second = (batch_order(lengths, 32, True, seed=s) for s in (1, 2))
    widths = [max(lengths[i] for i in b) for b in first]
    assert widths != sorted(widths) and widths != sorted(widths, reverse=True)
    assert {frozenset(b) for b in first} != {frozenset(b) for b in second}


def test_random_batches_are_the_old_seeded_shuffle():
    """buckets=False reproduces the batches of earlier versions, for comparisons."""
    order = list(range(100))
    random.Random(5).shuffle(order)
    assert batch_order(skewed(100), 32, True, seed=5, buckets=False) == [order[s : s + 32] for s in range(0, 100, 32)]


def test_inference_batches_are_sorted_by_length():
    lengths = skewed(500)
    flat = [lengths[i] for b in batch_order(lengths, 64) for i in b]
    assert flat == sorted(lengths)
