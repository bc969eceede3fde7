"""The vectorised dev-set tuner must give exactly what a naive loop over the grid gives."""

from __future__ import annotations

import numpy as np
import pytest

from knnie.evaluation.relations import micro_f1_ids
from knnie.memory.knn import KERNELS, interpolate, kernel_distances, knn_probs
from knnie.memory.tuner import (
    LAMBDA_GRID,
    KnnParams,
    grid_points,
    simplex_grid,
    temperature_grid,
    tune_grid,
    tune_weights,
)
from tests.helpers import LABELS, clustered, random_memory

NEGATIVE = 0  # label "a" plays the no-relation label, so the score is micro-F1 without it


def noisy_model(gold: np.ndarray, seed: int) -> np.ndarray:
    """A weak classifier: a small bump on the gold label drowned in noise."""
    rng = np.random.default_rng(seed)
    logits = 1.0 * np.eye(len(LABELS))[gold] + rng.normal(size=(len(gold), len(LABELS)))
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def score(pred: np.ndarray, gold: np.ndarray) -> np.ndarray:
    return micro_f1_ids(pred, gold, NEGATIVE)


def test_tune_grid_equals_naive_loop():
    memory = random_memory(300)
    queries, gold = clustered(60, seed=2)
    p_model = noisy_model(gold, seed=3)

    dist, ids = memory.search(queries, 256)
    grid = tune_grid(dist, memory.values[ids], p_model, lambda pred: score(pred, gold))

    ks = grid_points(dist.shape[1])
    naive = np.zeros_like(grid.scores)
    temps = []
    for ki, kernel in enumerate(KERNELS):
        temps.append([])
        for kk, k in enumerate(ks):
            d, i = memory.search(queries, k)  # a fresh search for every k
            t_grid = temperature_grid(kernel_distances(d, kernel))
            temps[ki].append(t_grid)
            for ti, t in enumerate(t_grid):
                p_knn = knn_probs(d, memory.values[i], len(LABELS), t, kernel)
                for li, lam in enumerate(LAMBDA_GRID):
                    pred = interpolate(p_knn, p_model, lam).argmax(-1)
                    naive[ki, kk, ti, li] = score(pred[None], gold)[0]

    assert grid.ks == ks == (2, 4, 8, 16, 32, 64, 128, 256)
    assert grid.temperatures == temps
    assert np.array_equal(naive, grid.scores)
    ki, kk, ti, li = np.unravel_index(np.argmax(naive), naive.shape)
    assert grid.best == KnnParams(ks[kk], temps[ki][kk][ti], LAMBDA_GRID[li], KERNELS[ki])
    # the memory is informative: the best point beats the model alone (λ = 0)
    vanilla = score(p_model.argmax(-1)[None], gold)[0]
    assert grid.best_score > vanilla + 0.1
    assert grid.best.lam > 0


def test_tune_weights_keeps_only_the_informative_distribution():
    rng = np.random.default_rng(4)
    gold = rng.integers(len(LABELS), size=200)
    # first: always right, but only by a hair (0.21 vs 0.1975); second: random noise
    informative = np.full((200, len(LABELS)), 0.1975)
    informative[np.arange(200), gold] = 0.21
    noise = rng.dirichlet(np.ones(len(LABELS)), size=200)

    weights, best = tune_weights([informative, noise], lambda pred: score(pred, gold))

    assert weights == [1.0, 0.0]
    assert best == 1.0
    assert tune_weights([noise, informative], lambda pred: score(pred, gold))[0] == [0.0, 1.0]


def test_three_memories_mix_finds_the_only_combination_that_is_right():
    """Each of three distributions is right, and sure, on its own third of the queries and leans
    to a wrong label elsewhere: gold wins a query of memory m iff w_m > 0.1·(1 − w_m), i.e. w_m > 1/11,
    so every memory needs weight; among the mixes that get all right, ties go to the first memory."""
    n, c = 90, 3
    gold = np.arange(n) % c
    parts = []
    for m in range(3):
        p = np.full((n, c), 0.0)
        mine = np.arange(n) // 30 == m
        p[mine, gold[mine]] = 1.0  # right, and sure, on its third
        p[~mine, (gold[~mine] + 1) % c] = 0.45  # elsewhere it leans to a wrong label
        p[~mine, gold[~mine]] = 0.35
        p[~mine, (gold[~mine] + 2) % c] = 0.2
        parts.append(p)

    weights, best = tune_weights(parts, lambda pred: score(pred, gold))

    assert best == 1.0
    assert weights == pytest.approx([0.8, 0.1, 0.1])
    single = max(tune_weights([p], lambda pred: score(pred, gold))[1] for p in parts)
    assert single < 0.5


def test_simplex_grid_covers_every_mix_once_first_memory_first():
    grid = simplex_grid(3, 10)
    assert len(grid) == 66 and len({tuple(r) for r in grid}) == 66
    np.testing.assert_allclose(grid.sum(axis=1), 1.0)
    assert list(grid[0]) == [1.0, 0.0, 0.0] and list(grid[-1]) == [0.0, 0.0, 1.0]
