"""N-way K-shot evaluation over vectors encoded once: every episode is a small support memory
(`Memory`) classified by `classify`, so a thousand episodes take seconds after the encoding.
Accuracy is reported with a 95 % confidence interval over episodes (normal approximation:
1.96 · s / √episodes), as FewRel results usually are. kNN's k, T and kernel can be chosen on
episodes of other relations (meta-training ones) with `tune_knn`: never on the evaluated episodes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from knnie.memory.memory import Memory
from knnie.memory.tuner import KnnParams, tune_grid
from knnie.tasks.fewshot.episodes import Episode
from knnie.tasks.fewshot.support import classify, support_scale

Z95 = 1.959964  # the normal distribution's two-sided 95 % quantile


@dataclass
class Accuracy:
    """Mean accuracy over episodes and the half-width of its 95 % confidence interval."""

    mean: float
    ci95: float
    episodes: int

    @classmethod
    def of(cls, per_episode: np.ndarray) -> Accuracy:
        n = len(per_episode)
        half = Z95 * float(np.std(per_episode, ddof=1)) / np.sqrt(n) if n > 1 else float("nan")
        return cls(float(np.mean(per_episode)), half, n)


def episode_memory(vectors: np.ndarray, labels: Sequence[str], episode: Episode, fingerprint: str = "") -> Memory:
    """The episode's support set as a memory (records: the pool index of each support example)."""
    idx = episode.support.ravel()
    return Memory.from_labels(vectors[idx], [labels[i] for i in idx], [{"index": int(i)} for i in idx],
                              fingerprint, index="flat")


def episode_accuracies(vectors: np.ndarray, labels: Sequence[str], episodes: Sequence[Episode], method: str,
                       params: KnnParams) -> np.ndarray:
    """The accuracy of `method` on each episode's queries (pool vectors and labels, indexed by the episodes)."""
    out = np.zeros(len(episodes))
    for e, episode in enumerate(episodes):
        memory = episode_memory(vectors, labels, episode)
        p = classify(memory, vectors[episode.query.ravel()], method, params)
        predicted = np.asarray(memory.labels, dtype=object)[p.argmax(-1)]
        gold = np.asarray(episode.relations, dtype=object)[episode.query_classes]
        out[e] = float(np.mean(predicted == gold))
    return out


def tune_knn(vectors: np.ndarray, labels: Sequence[str], episodes: Sequence[Episode],
             ks: tuple[int, ...] = (1, 2, 3, 5, 10, 15, 20, 25, 50)) -> tuple[KnnParams, float]:
    """kNN-over-support's k, relative T and kernel with the best mean accuracy on these episodes (drawn
    from relations other than the evaluated ones), and that accuracy. Each episode's support memory is
    searched once; `knnie.memory.tuner.tune_grid` scores the grid from the stacked searches, distances
    in units of each support set's scale as `classify` measures them."""
    dists, neighbour_ids, gold = [], [], []
    for episode in episodes:
        memory = episode_memory(vectors, labels, episode)
        dist, ids = memory.search(vectors[episode.query.ravel()], len(memory))
        dists.append(dist / support_scale(memory))
        neighbour_ids.append(memory.values[ids])
        gold.append(np.array([memory.labels.index(r) for r in episode.relations])[episode.query_classes])
    gold_ids = np.concatenate(gold)
    n_labels = len(episodes[0].relations)
    grid = tune_grid(np.concatenate(dists), np.concatenate(neighbour_ids), np.zeros((len(gold_ids), n_labels)),
                     lambda rows: (rows == gold_ids).mean(axis=-1), ks=ks, lambdas=(1.0,))
    return grid.choose()
