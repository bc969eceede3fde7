"""The K-shot supervised protocol (TKRE's, issue 14): train on K labelled examples per relation, sampled with a seed,
and test on the full test set. Sampling is per relation, so the K-shot set of one relation does not depend on which
other relations the data holds, and nested: with one seed, the K = 8 set is part of the K = 16 set."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from knnie.data import RelationExample
from knnie.errors import DataError, check_count


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
    by_label: dict[str, list[int]] = {}
    for i, ex in enumerate(examples):
        if ex.label is None:
            raise DataError("missing label: a K-shot set is sampled from labelled examples", path=ex.source,
                            field="label")
        by_label.setdefault(ex.label, []).append(i)
    if not by_label:
        raise DataError("no examples to sample from")
    chosen: list[int] = []
    for label, indices in by_label.items():
        order = list(indices)
        random.Random(f"{seed}\0{label}").shuffle(order)
        chosen += order[:k]
    labels = sorted(by_label)
    summary = KShotSummary(k, seed, {label: min(k, len(by_label[label])) for label in labels},
                           {label: len(by_label[label]) for label in labels if len(by_label[label]) < k})
    return [examples[i] for i in sorted(chosen)], summary
