"""Choose k, T, λ and the kernel on dev from ONE search per memory.

Each memory is searched once with k_max neighbours; every grid point is then computed from
those results with array math (the k nearest of k_max are its first k columns). λ is
vectorised too: one argmax over an (n_λ, n, C) block scores all λ at once.

An approximate memory (IVF, HNSW) is tuned for speed too: the grid is still scored on the exact
search, then the smallest k within DEPTH_TOLERANCE of the best is kept (the kNN-only setting no
deeper than that, so that it never makes prediction search deeper), and the cheapest search depth
(IVF lists probed, HNSW beam width) whose dev score is within DEPTH_TOLERANCE of that.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from knnie.errors import DataError
from knnie.memory.knn import KERNELS, interpolate, kernel_distances, knn_from_kernel_distances

K_GRID = tuple(2**i for i in range(1, 9))  # 2 .. 256
LAMBDA_GRID = tuple(round(0.1 * i, 1) for i in range(11))
T_RELATIVE = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)  # × median nearest-neighbour distance
T_ABSOLUTE = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0)
DEPTH_TOLERANCE = 0.0005  # dev score (0.05 F1 points) each speed choice may give up against the exact best

# scores predictions (n_points, n) against the gold ids (n,), one score per row
ScoreFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class KnnParams:
    """What the tuner chooses for one memory. Settings that would give silent nonsense (no
    neighbours, a division by zero, a negative weight, an unknown kernel) are refused."""

    k: int
    temperature: float
    lam: float
    kernel: str = "plain"
    depth: int | None = None  # search depth of an approximate memory (nprobe, efSearch); None: its own

    def __post_init__(self) -> None:
        _refuse(asdict(self))

    @classmethod
    def from_dict(cls, raw: Any, path: str | Path | None = None, field: str | None = None) -> KnnParams:
        """Settings read from a config (`field` names them there, e.g. "knn.train"); any
        problem is a DataError naming `path` and the field."""
        names = [f.name for f in fields(cls)]
        if not isinstance(raw, dict) or not set(names[:3]) <= raw.keys() <= set(names):
            raise DataError(f"needs {', '.join(names)} (kernel optional), found {raw!r}", path=path, field=field)
        _refuse(raw, path, field)
        return cls(**raw)


def _refuse(values: dict[str, Any], path: str | Path | None = None, field: str | None = None) -> None:
    """Raise a DataError naming the first unsound setting among k, temperature, lam and kernel."""
    k, t, lam, kernel = values["k"], values["temperature"], values["lam"], values.get("kernel", "plain")
    problems = (
        ("k", not _integer(k) or k < 1, "an integer ≥ 1"),
        ("temperature", not _number(t) or not math.isfinite(t) or t <= 0, "a finite number > 0"),
        ("lam", not _number(lam) or not 0 <= lam <= 1, "a number in [0, 1]"),
        ("kernel", kernel not in KERNELS, f"one of {', '.join(KERNELS)}"),
    )
    for name, bad, want in problems:
        if bad:
            where = f"{field}.{name}" if field else name
            raise DataError(f"{name} must be {want}, not {values[name]!r}", path=path, field=where)


def _integer(x: Any) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool)


def _number(x: Any) -> bool:
    return isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)


def temperature_grid(kernel_dist: np.ndarray) -> list[float]:
    """13 temperatures: multiples of the median nearest-neighbour distance (as the kernel
    sees it), so that weights neither underflow nor flatten, plus absolute values."""
    nearest = kernel_dist[:, 0][np.isfinite(kernel_dist[:, 0])] if kernel_dist.size else np.zeros(0)
    scale = float(np.median(nearest)) if nearest.size else 1.0
    scale = scale if scale > 0 else 1.0
    return [m * scale for m in T_RELATIVE] + list(T_ABSOLUTE)


@dataclass
class GridResult:
    """Scores of every grid point, indexed [kernel, k, T, λ], and the best point."""

    scores: np.ndarray
    kernels: tuple[str, ...]
    ks: tuple[int, ...]
    temperatures: list[list[list[float]]]  # [kernel][k] -> the 13 T of that (kernel, k)
    lambdas: tuple[float, ...]

    @property
    def best(self) -> KnnParams:
        return self.choose()[0]

    def choose(self, lam: float | None = None, tolerance: float = 0.0,
               max_k: int | None = None) -> tuple[KnnParams, float]:
        """The best point (at λ = `lam` if given, with k ≤ `max_k` if given) and its score; with a
        tolerance, the best of the smallest k that comes within `tolerance` of it (a shallower,
        cheaper search)."""
        lambdas = self.lambdas if lam is None else (lam,)
        scores = self.scores if lam is None else self.scores[..., [self.lambdas.index(lam)]]
        if max_k is not None:
            scores = np.where((np.array(self.ks) <= max_k)[:, None, None], scores, -np.inf)
        if tolerance > 0:
            smallest = np.nonzero(scores >= scores.max() - tolerance)[1].min()
            scores = np.where((np.arange(len(self.ks)) == smallest)[:, None, None], scores, -np.inf)
        ki, kk, ti, li = np.unravel_index(int(np.argmax(scores)), scores.shape)
        params = KnnParams(self.ks[kk], self.temperatures[ki][kk][ti], lambdas[li], self.kernels[ki])
        return params, float(scores[ki, kk, ti, li])

    @property
    def best_score(self) -> float:
        return float(self.scores.max())


def grid_points(k_max: int, ks: tuple[int, ...] = K_GRID) -> tuple[int, ...]:
    """The k values to try for a memory whose search returned k_max neighbours."""
    kept = tuple(k for k in ks if k <= k_max)
    return kept or (k_max,)


def tune_grid(distances: np.ndarray, neighbour_labels: np.ndarray, p_model: np.ndarray, score: ScoreFn,
              ks: tuple[int, ...] = K_GRID, lambdas: tuple[float, ...] = LAMBDA_GRID,
              kernels: tuple[str, ...] = KERNELS, known: int | None = None) -> GridResult:
    """Score every (kernel, k, T, λ) from one search's results: distances and neighbour
    labels (n, k_max), sorted nearest first; p_model (n, C) the model's own distribution
    (`known`: the head's labels are the first `known`, see `interpolate`)."""
    ks = grid_points(distances.shape[1], ks)
    n_labels = p_model.shape[1]
    scores = np.zeros((len(kernels), len(ks), len(T_RELATIVE) + len(T_ABSOLUTE), len(lambdas)))
    temps: list[list[list[float]]] = []
    for ki, kernel in enumerate(kernels):
        temps.append([])
        for kk, k in enumerate(ks):
            kd = kernel_distances(distances[:, :k], kernel)
            grid = temperature_grid(kd)
            temps[ki].append(grid)
            for ti, t in enumerate(grid):
                p_knn = knn_from_kernel_distances(kd, neighbour_labels[:, :k], n_labels, t)
                scores[ki, kk, ti] = score(interpolate(p_knn, p_model, np.array(lambdas), known).argmax(-1))
    return GridResult(scores, tuple(kernels), ks, temps, tuple(lambdas))


def simplex_grid(n: int, steps: int = 10) -> np.ndarray:
    """Every weight vector of n non-negative multiples of 1/steps summing to 1, in descending
    lexicographic order (the first row puts all weight on the first memory)."""
    rows = [c for c in itertools.product(range(steps, -1, -1), repeat=n) if sum(c) == steps]
    return np.array(rows, dtype=np.float64) / steps


def tune_weights(dists: list[np.ndarray], score: ScoreFn, steps: int = 10, chunk: int = 64
                 ) -> tuple[list[float], float]:
    """Weights w (on the simplex, step 1/steps) for p = Σ_m w_m·p_m over several memories'
    distributions (n, C); returns (best w, its score). With two memories this is the α mix
    p = α·p_1 + (1 − α)·p_2. Ties go to the weights that favour the earlier distributions, so
    pass the memories best first."""
    grid = simplex_grid(len(dists), steps)
    stacked = np.stack(dists)
    scores = np.concatenate([score(np.einsum("gm,mnc->gnc", grid[i : i + chunk], stacked).argmax(-1))
                             for i in range(0, len(grid), chunk)])
    best = int(np.argmax(scores))  # the first maximum: the earliest in descending order
    return [float(w) for w in grid[best]], float(scores[best])


def choose_depth(depths: Sequence[int], score_at: Callable[[int], float], exact: float,
                 tolerance: float = DEPTH_TOLERANCE) -> tuple[int | None, dict[int, float]]:
    """The cheapest search depth whose dev score (`score_at`) is within `tolerance` of the exact
    search's, trying `depths` from the cheapest and stopping at the first good one; the deepest
    if none is. Returns it and the score of every depth tried (what each shallower one loses)."""
    tried: dict[int, float] = {}
    for depth in depths:
        tried[depth] = score_at(depth)
        if tried[depth] >= exact - tolerance:
            return depth, tried
    return (depths[-1] if depths else None), tried
