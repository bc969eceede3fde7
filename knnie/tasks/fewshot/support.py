"""Few-shot relation classification from a support set: the support set IS a memory.

A support set (K labelled examples of each of N relations) is encoded by a relation extractor's
representer (a headless one over any encoder, or a trained knnie model's) into a `Memory`; queries
are classified from it by one of two rules, both through `Memory.search` and `knnie.memory.knn`:

* ``prototype`` (prototypical networks, Snell et al. 2017): a memory of each relation's mean support
  vector; the query takes the nearest prototype by squared L2, p = softmax(−d / T) over the prototypes.
* ``knn`` (kNN over the support set): the k nearest support examples vote, weighted exp(−d / T)
  (`knn_probs`). T is relative to the support set's own scale (`support_scale`: the median distance
  of a support example to its nearest other one), so that one setting fits any encoder; k defaults to K
  and T to 0.1 × that scale.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from knnie.data.descriptions import RelationType
from knnie.data.schema import Neighbour, RelationExample
from knnie.encoders.markers import first_few
from knnie.errors import DataError, KnnieError, check_count
from knnie.memory.knn import knn_probs
from knnie.memory.memory import Memory
from knnie.memory.tuner import KnnParams
from knnie.tasks.model_dir import is_model
from knnie.tasks.re import RelationExtractor, RelationPrediction

log = logging.getLogger(__name__)
METHODS = ("prototype", "knn")
SUPPORT = "support"  # the name support neighbours carry
# kNN over the support set: k = K unless given; T = KNN_TEMPERATURE × the support set's scale. A stated default, not
# tuned: `tune_knn` chooses k, T and the kernel on episodes of other (meta-training) relations, which on FewRel did
# no better than these (bench/results/fewshot_fewrel.md); nothing is ever chosen on the evaluated episodes
KNN_TEMPERATURE = 0.1
PROTOTYPE_TEMPERATURE = 1.0  # softmax(−d) over prototypes, as prototypical networks; it never changes the label


def load_extractor(model_or_encoder: str | Path, device: str | torch.device = "auto", seed: int = 0
                   ) -> RelationExtractor:
    """A trained knnie model directory (its representer is used; the head is ignored), or a headless
    extractor over an encoder directory or name. An encoder without knnie's marker tokens gets new
    ones, initialised under `seed` so that its vectors are the same on every run."""
    if is_model(Path(model_or_encoder)):
        return RelationExtractor.from_pretrained(model_or_encoder, memories=False, device=device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return RelationExtractor.headless(encoder=str(model_or_encoder), markers="typed", device=device)


def shots_of(examples: Sequence[RelationExample], shots: int | None, source: str | None = None,
             relations: Sequence[str] = ()) -> list[RelationExample]:
    """The support set: with `shots` = K, the first K examples of each relation (a relation with fewer is an
    error naming `source` and the relation); else all of them. With `relations` (a schema's ids), a support
    label outside them is an error too (a typo would otherwise make a relation of its own)."""
    counts = Counter(ex.label for ex in examples)
    if None in counts:
        first = next(ex for ex in examples if ex.label is None)
        raise DataError("a support example needs a label", path=first.source or source, field="label")
    unknown = sorted(set(counts) - set(relations)) if relations else []
    if unknown:
        raise DataError(f"support relations not in the schema: {', '.join(unknown)}", path=source, field="label")
    short = {r: m for r, m in counts.items() if shots is not None and m < shots}
    if short:
        shown = ", ".join(f"'{r}' has {m}" for r, m in short.items())
        raise DataError(f"{shots}-shot prediction needs {shots} support examples of every relation; {shown}",
                        path=source)
    if shots is None:
        return list(examples)
    taken: Counter[str] = Counter()
    kept = []
    for ex in examples:
        if taken[ex.label] < shots:
            taken[ex.label] += 1
            kept.append(ex)
    return kept


def prototype_memory(memory: Memory) -> Memory:
    """A memory of one key per label: the mean of that label's keys (its record: the label and how
    many support examples it averages)."""
    members = np.arange(len(memory.labels))[:, None] == memory.values[None, :]  # (labels, keys)
    sizes = members.sum(axis=1)
    means = (members / sizes[:, None]).astype(np.float32) @ memory.keys.astype(np.float32)
    records = [{"label": label, "support": int(n)} for label, n in zip(memory.labels, sizes)]
    return Memory(means, np.arange(len(memory.labels)), records, memory.labels, memory.config.fingerprint,
                  index="flat", metric=memory.config.metric)


def support_scale(memory: Memory) -> float:
    """The median squared distance of a support example to its nearest other one (1 when there is no
    other, or all coincide): the unit `knn`'s temperature is measured in."""
    if len(memory) < 2:
        return 1.0
    dist, _ = memory.search(memory.keys.astype(np.float32), 2)
    scale = float(np.median(dist[:, 1]))
    return scale if scale > 0 else 1.0


def classify(memory: Memory, queries: np.ndarray, method: str, params: KnnParams) -> np.ndarray:
    """p (n, labels of `memory`) of each query vector from a support memory; `params` are kNN's k,
    relative T and kernel (`prototype` uses its T alone, over all prototypes)."""
    if method == "prototype":
        protos = prototype_memory(memory)
        dist, ids = protos.search(queries, len(protos))
        return knn_probs(dist, protos.values[ids], len(protos.labels), params.temperature)
    if method != "knn":
        raise KnnieError(f"unknown few-shot method '{method}'; choose one of {', '.join(METHODS)}")
    dist, ids = memory.search(queries, params.k)
    return knn_probs(dist / support_scale(memory), memory.values[ids], len(memory.labels), params.temperature,
                     params.kernel)


def default_params(method: str, shots: int) -> KnnParams:
    """The stated defaults: prototype T = 1; kNN k = K (`shots`), T = KNN_TEMPERATURE, plain kernel."""
    if method == "prototype":
        return KnnParams(k=1, temperature=PROTOTYPE_TEMPERATURE, lam=1.0)
    return KnnParams(k=shots, temperature=KNN_TEMPERATURE, lam=1.0)


@dataclass
class SupportSet:
    """A support set as a memory of `extractor`'s relation vectors; `predict` classifies queries among
    its relations. `relations` (from a schema) describe them in the output."""

    extractor: RelationExtractor
    memory: Memory
    shots: int  # K: the fewest support examples of a relation
    relations: dict[str, RelationType]

    @classmethod
    def build(cls, extractor: RelationExtractor, examples: Sequence[RelationExample], shots: int | None = None,
              source: str | None = None, schema: Sequence[RelationType] = (), batch_size: int = 64,
              show_progress: bool = False) -> SupportSet:
        """Encode the support examples (the first `shots` of each relation when given; see `shots_of`)."""
        if shots is not None:
            check_count(shots, 1, "shots")
        chosen = shots_of(examples, shots, source, [r.id for r in schema])
        extractor.too_long(chosen, refuse=True)
        memory = extractor.build_memory(chosen, index="flat", batch_size=batch_size, show_progress=show_progress,
                                        source=Path(source).name if source else SUPPORT)
        counts = Counter(ex.label for ex in chosen)
        unsupported = [r.id for r in schema if r.id not in counts]
        if unsupported:
            log.warning("%d of the schema's %d relations have no support example and are not predicted: %s",
                        len(unsupported), len(schema), first_few(unsupported))
        return cls(extractor, memory, min(counts.values()), {r.id: r for r in schema})

    def predict(self, examples: list[RelationExample], method: str = "knn", params: KnnParams | None = None,
                neighbours: int = 3, batch_size: int = 64, show_progress: bool = False) -> list[RelationPrediction]:
        """The relation of each example among the support set's, its probability, and the `neighbours`
        nearest support examples; an example whose entities do not fit the encoder gets no answer."""
        check_count(neighbours, 0, "neighbours")
        params = params or default_params(method, self.shots)
        return self.extractor.answer_fitting(
            examples, lambda fit: self._answers(fit, method, params, neighbours, batch_size, show_progress))

    def _answers(self, examples: list[RelationExample], method: str, params: KnnParams, neighbours: int,
                 batch_size: int, show_progress: bool) -> list[RelationPrediction]:
        if not examples:
            return []
        vectors = self.extractor.representer.encode(examples, batch_size, show_progress)
        p = classify(self.memory, vectors, method, params)
        dist, ids = self.memory.search(vectors, max(neighbours, 1))
        labels, best = self.memory.labels, p.argmax(-1)
        return [RelationPrediction(labels[b], float(p[i, b]), [
            Neighbour(SUPPORT, labels[self.memory.values[j]], float(d), self.memory.records[j])
            for d, j in zip(dist[i, :neighbours], ids[i, :neighbours])], p_knn=float(p[i, b]))
            for i, b in enumerate(best)]

    def row(self, example: RelationExample, prediction: RelationPrediction) -> dict:
        """What `knnie fewshot predict` writes: `RelationPrediction.to_row`, plus the predicted relation's
        name and description when a schema gave them."""
        out = prediction.to_row(example)
        found = self.relations.get(prediction.label) if prediction.label is not None else None
        if found is not None:
            out["relation"] = {"id": found.id, "name": found.name, "description": found.description}
        return out


