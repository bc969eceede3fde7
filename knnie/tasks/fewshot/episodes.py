"""N-way K-shot episodes (FewRel's protocol): N relations drawn at random, K support and Q query
examples of each, support and query disjoint. Episodes index a pool of labelled examples (or of their
vectors, encoded once), so a thousand of them cost no encoding."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from knnie.errors import DataError, KnnieError, check_count


@dataclass(frozen=True)
class Episode:
    """One N-way K-shot task over a pool: `relations` in class-id order, `support` (N, K) and
    `query` (N, Q) indices into the pool, row i holding relation i's examples."""

    relations: tuple[str, ...]
    support: np.ndarray
    query: np.ndarray

    @property
    def support_labels(self) -> list[str]:
        """The label of each support index, in `support.ravel()` order."""
        return [r for r in self.relations for _ in range(self.support.shape[1])]

    @property
    def query_classes(self) -> np.ndarray:
        """The gold class id (index into `relations`) of each query, in `query.ravel()` order."""
        return np.repeat(np.arange(len(self.relations)), self.query.shape[1])


def by_label(labels: Sequence[str | None]) -> dict[str, np.ndarray]:
    """Pool indices of each label, in pool order, labels sorted (so episodes do not depend on the
    order relations first occur in)."""
    found: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        if label is None:
            raise DataError(f"pool example {i} has no label: episodes need labelled examples", field="label")
        found.setdefault(label, []).append(i)
    return {label: np.array(found[label], dtype=np.int64) for label in sorted(found)}


def sample_episodes(labels: Sequence[str | None], n: int, k: int, q: int, episodes: int, seed: int = 0,
                    source: str | None = None) -> list[Episode]:
    """`episodes` seeded N-way K-shot episodes over a pool whose examples have these labels: the same
    seed gives the same episodes. Every relation of the pool must have K + Q examples (a relation with
    fewer is refused, naming it and `source`, rather than silently never drawn)."""
    for value, name in ((n, "n"), (k, "k"), (q, "q"), (episodes, "episodes")):
        check_count(value, 1, name)
    pool = by_label(labels)
    short = {label: len(ids) for label, ids in pool.items() if len(ids) < k + q}
    if short:
        shown = ", ".join(f"'{label}' has {m}" for label, m in sorted(short.items()))
        raise DataError(f"{k}-shot episodes with {q} queries need {k + q} examples of every relation; {shown}",
                        path=source)
    if n > len(pool):
        raise KnnieError(f"{n}-way episodes need {n} relations; {source or 'the pool'} has {len(pool)}")
    rng = np.random.default_rng(seed)
    names = list(pool)
    out = []
    for _ in range(episodes):
        chosen = rng.choice(len(names), size=n, replace=False)
        drawn = np.stack([rng.choice(pool[names[c]], size=k + q, replace=False) for c in chosen])
        out.append(Episode(tuple(names[c] for c in chosen), drawn[:, :k], drawn[:, k:]))
    return out
