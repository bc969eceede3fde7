"""The K-shot supervised protocol (TKRE's, issue 14): train on K labelled examples per relation, sampled with a seed,
and test on the full test set. Sampling is per relation, so the K-shot set of one relation does not depend on which
other relations the data holds, and nested: with one seed, the K = 8 set is part of the K = 16 set."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from knnie.data import RelationExample
from knnie.errors import DataError, check_count
from knnie.tasks.fewshot.episodes import by_label


@dataclass
class KShotSummary:
    """What a K-shot sample holds: `counts` per relation (label order), and `short`, the relations with fewer than K
    examples, which are taken whole (their count there)."""

    k: int
    seed: int
    counts: dict[str, int]
    short: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def describe(self) -> str:
        """One line for users: the size of the sample and every relation taken whole."""
        whole = "; fewer than K, taken whole: " + ", ".join(f"{label} ({n})" for label, n in self.short.items())
        return (f"{self.total} examples: {self.k} per relation for {len(self.counts) - len(self.short)} of "
                f"{len(self.counts)} relations (seed {self.seed}){whole if self.short else ''}")


def sample_kshot(examples: list[RelationExample], k: int, seed: int) -> tuple[list[RelationExample], KShotSummary]:
    """K examples of each relation of `examples`, chosen at random with `seed` (all of a relation's examples when it
    has fewer), in their order in `examples`. Every example needs a label: an unlabelled one is a DataError naming
    its record."""
    check_count(k, 1, "K")
    unlabelled = next((ex for ex in examples if ex.label is None), None)
    if unlabelled is not None:
        raise DataError("missing label: a K-shot set is sampled from labelled examples", path=unlabelled.source,
                        field="label")
    pool = by_label([ex.label for ex in examples])  # labels sorted, each with its indices in file order
    if not pool:
        raise DataError("no examples to sample from")
    chosen: list[int] = []
    for label, indices in pool.items():
        order = indices.tolist()
        random.Random(f"{seed}\0{label}").shuffle(order)
        chosen += order[:k]
    summary = KShotSummary(k, seed, {label: min(k, len(ids)) for label, ids in pool.items()},
                           {label: len(ids) for label, ids in pool.items() if len(ids) < k})
    return [examples[i] for i in sorted(chosen)], summary
