"""The PURE-style relation classifier and `RelationExtractor`, knnie's front class for RE.

Relation vector x = encoder hidden state at the head start marker ⊕ at the tail start
marker (`RelationRepresenter`; the marker scheme is pluggable); a linear layer gives p_RE(y|x).
Attached memories turn p_RE into kNN-RE: p = λ·p_kNN + (1 − λ)·p_RE, and with two memories
p = α·p(first) + (1 − α)·p(second). A headless extractor has no linear layer: p = p_kNN.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from knnie.data.readers import read_relations
from knnie.data.schema import NO_RELATION, Neighbour, RelationExample
from knnie.encoders.device import resolve_device
from knnie.encoders.loading import DEFAULT_ENCODER, load_encoder
from knnie.encoders.markers import SCHEMES, EntitiesTooFarApart, marker_scheme, refusal
from knnie.encoders.representer import Batch, RelationRepresenter
from knnie.errors import DataError, KnnieError
from knnie.memory.tuner import ScoreFn
from knnie.tasks.base import MemoryAugmentedModel, check_count
from knnie.tasks.task_model import TaskModel

log = logging.getLogger(__name__)
NEGATIVE_LABELS = (NO_RELATION, "Other", "NA", "None")


@dataclass
class REConfig:
    """Everything needed to rebuild a relation extractor, saved as knnie_config.json."""

    labels: list[str]  # of the head; none when headless
    encoder: str = DEFAULT_ENCODER
    entity_types: list[str] = field(default_factory=list)
    markers: str = "typed"  # the entity-marker scheme (`knnie.encoders.markers.SCHEMES`)
    head: bool = True  # False: no classifier, predictions come from memories alone
    negative_label: str | None = None
    max_length: int = 256
    dropout: float = 0.1
    knn: dict[str, dict] = field(default_factory=dict)  # memory name -> tuned KnnParams
    knn_only: dict[str, dict] = field(default_factory=dict)  # memory name -> best params at λ = 1
    mix: dict[str, float] | None = None  # memory name -> weight in the mix, tuned on dev
    fingerprint: str = ""
    task: str = "relation-extraction"


@dataclass
class RelationPrediction:
    """The relation of one example; with no answer (its entities do not fit the encoder) the
    label and probability are None and `reason` says why. `p_model` and `p_knn` are the predicted
    label's probability under the classifier head alone and under the memories' kNN alone (λ = 1):
    None for a headless model and for a model without memories respectively."""

    label: str | None
    probability: float | None
    neighbours: list[Neighbour]
    reason: str | None = None
    p_model: float | None = None
    p_knn: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_row(self, example: RelationExample) -> dict[str, Any]:
        """What `knnie predict` writes for `example`: its text and mentions (character offsets
        into that text), the prediction, its probability (and its share under the head alone and the
        memories alone), the neighbours, and the reason when there is no answer."""
        row = {**example.to_row(), "prediction": self.label, "probability": self.probability,
               "p_model": self.p_model, "p_knn": self.p_knn, "neighbours": [n.to_row() for n in self.neighbours]}
        if self.reason is not None:
            row["reason"] = self.reason
        return row


class RelationExtractor(MemoryAugmentedModel[RelationExample, REConfig]):
    """Classify the relation between a head and a tail entity, consulting memories.

    Persistence, memories, kNN interpolation, the mix of several memories and tuning come from
    `MemoryAugmentedModel`.

    >>> re = RelationExtractor.from_pretrained("model_dir")
    >>> re.predict([example], neighbours=3)[0].label

    A headless extractor (`headless`) has no classifier: it labels by the memories it consults.
    """

    config_class = REConfig
    config_what = "relation model"
    label_word = "labels"
    knn_method = "knn_re"
    task = "relation-extraction"

    @property
    def labels(self) -> list[str]:
        return self.config.labels

    @property
    def tokenizer(self):
        return self.representer.tokenizer

    @property
    def negative_label(self) -> str | None:
        """The no-relation label, left out of micro-F1: the configured one, or (headless, none
        configured) the first of NEGATIVE_LABELS among the memories' labels."""
        if self.config.negative_label is not None or self.has_head:
            return self.config.negative_label
        return next((n for n in NEGATIVE_LABELS if n in self.label_space), None)

    # -- construction and persistence ------------------------------------------------------
    @classmethod
    def new(cls, labels: list[str], encoder: str = DEFAULT_ENCODER, entity_types: list[str] = (),
            negative_label: str | None = None, max_length: int = 256, dropout: float = 0.1,
            markers: str = "typed", device: str | torch.device = "auto") -> RelationExtractor:
        """An untrained extractor on `device`: the encoder with the marker scheme's tokens added
        (`markers`: "typed" or "entity-mask") and a fresh head."""
        if len(set(labels)) < 2 or len(set(labels)) != len(labels):
            raise KnnieError(f"a relation extractor needs two labels or more, each once; got {list(labels)}")
        if negative_label is not None and negative_label not in labels:
            raise KnnieError(f"the negative label '{negative_label}' is not one of the labels {list(labels)}")
        if negative_label is None:
            negative_label = next((n for n in NEGATIVE_LABELS if n in labels), None)
        return cls._create(list(labels), encoder, entity_types, negative_label, max_length, dropout, markers, device)

    @classmethod
    def headless(cls, encoder: str = DEFAULT_ENCODER, entity_types: list[str] = (), negative_label: str | None = None,
                 max_length: int = 256, markers: str = "typed", device: str | torch.device = "auto"
                 ) -> RelationExtractor:
        """An extractor with no classifier head: it predicts from the memories it consults alone
        (λ = 1), over their labels. `negative_label` (default: no_relation/Other/NA/None when a
        memory holds it) is left out of micro-F1."""
        return cls._create([], encoder, entity_types, negative_label, max_length, 0.0, markers, device, head=False)

    @classmethod
    def _create(cls, labels: list[str], encoder: str, entity_types: list[str], negative_label: str | None,
                max_length: int, dropout: float, markers: str, device: str | torch.device,
                head: bool = True) -> RelationExtractor:
        target = resolve_device(device)  # a missing GPU is refused before the encoder is loaded
        representer = RelationRepresenter.fresh(encoder, markers, entity_types, max_length)
        config = REConfig(labels=labels, encoder=str(encoder), entity_types=sorted(entity_types), markers=markers,
                          head=head, negative_label=negative_label, max_length=representer.max_length,
                          dropout=dropout)
        return cls(TaskModel(representer, len(labels) if head else None, dropout), config).to(target)

    @classmethod
    def _check_config(cls, raw: Any, path: Path) -> None:
        """The shared checks, and a known marker scheme."""
        super()._check_config(raw, path)
        if raw.get("markers", "typed") not in SCHEMES:
            raise DataError(f"unknown entity-marker scheme {raw['markers']!r}; one of {', '.join(SCHEMES)} expected",
                            path=path, field="markers")

    @classmethod
    def _from_encoder(cls, path: Path, config: REConfig) -> RelationExtractor:
        base, tokenizer = load_encoder(path)
        representer = RelationRepresenter(base, tokenizer, marker_scheme(config.markers), config.entity_types,
                                          config.max_length)
        return cls(TaskModel(representer, len(config.labels) if config.head else None, config.dropout), config)

    def _save_encoder(self, path: Path) -> None:
        self.representer.save(path)

    # -- encoding --------------------------------------------------------------------------
    def label_ids(self, examples: list[RelationExample], labels: list[str] | None = None) -> np.ndarray:
        """Gold label ids in `labels` (default: the label space, the head's labels and those of the
        memories); an unknown label is an error naming the record."""
        index = {label: i for i, label in enumerate(self.label_space if labels is None else labels)}
        ids = []
        for ex in examples:
            if ex.label is None:
                raise DataError("missing label (gold labels are needed here)", path=ex.source, field="label")
            if ex.label not in index:
                raise DataError(f"label '{ex.label}' is not one of the model's {len(index)} labels",
                                path=ex.source, field="label")
            ids.append(index[ex.label])
        return np.array(ids, dtype=np.int64)

    def batches(self, examples: list[RelationExample], batch_size: int, shuffle: bool = False, seed: int = 0,
                buckets: bool = True) -> list[Batch]:
        """Tokenised, dynamically padded batches: (example indices, tensors), grouped by
        `batch_order`: sorted by length for inference, length-bucketed shuffles for training."""
        return self.representer.batches(self.representer.prepare(examples)[0], batch_size, shuffle, seed, buckets)

    def too_long(self, examples: list[RelationExample], refuse: bool = False) -> dict[int, EntitiesTooFarApart]:
        """The examples whose head and tail alone exceed the encoder's limit, by index: `encode`
        refuses them, `predict` answers them with no label. With `refuse`, finding any is the
        error `encode` raises (how many, and where the first are)."""
        return self.representer.too_long(examples, refuse)

    # -- memories --------------------------------------------------------------------------
    read_examples = staticmethod(read_relations)

    def memory_entries(self, examples: list[RelationExample], batch_size: int = 64, show_progress: bool = False
                       ) -> tuple[np.ndarray, list[str], list[dict[str, Any]]]:
        """One key per example: its relation vector."""
        if not examples:
            raise KnnieError("cannot build an empty memory: the data gave no examples")
        for ex in examples:
            if not isinstance(ex.label, str):
                raise DataError("missing label: a memory needs labelled examples", path=ex.source, field="label")
        vectors, _ = self.encode(examples, batch_size, show_progress)
        return vectors, [ex.label for ex in examples], [ex.to_dict() for ex in examples]

    # -- prediction ------------------------------------------------------------------------
    def predict(self, examples: list[RelationExample], neighbours: int = 3, batch_size: int = 64,
                show_progress: bool = False, warn: bool = True) -> list[RelationPrediction]:
        """The relation of each example, its probability and the nearest memory entries. An
        example whose entities do not fit the encoder gets no answer (see `RelationPrediction`)
        and the others are still predicted; one warning says which (unless not `warn`: a caller
        that reports them itself)."""
        check_count(neighbours, 0, "neighbours")
        check_count(batch_size, 1, "batch_size")
        return self.answer_fitting(examples, lambda fit: self._answers(fit, neighbours, batch_size, show_progress),
                                   warn)

    def answer_fitting(self, examples: list[RelationExample],
                       answer: Callable[[list[RelationExample]], list[RelationPrediction]],
                       warn: bool = True) -> list[RelationPrediction]:
        """`answer` for the examples whose entities fit the encoder, in order; the others get no answer
        (`RelationPrediction` with a reason), and one warning says which unless not `warn`."""
        unfit = self.too_long(examples)  # one tokenisation more: cheap next to the encoder
        if unfit and warn:
            log.warning("no prediction: %s", refusal(unfit, examples, self.config.max_length))
        answers = iter(answer([ex for i, ex in enumerate(examples) if i not in unfit]))
        return [RelationPrediction(None, None, [], str(unfit[i])) if i in unfit else next(answers)
                for i in range(len(examples))]

    def _answers(self, examples: list[RelationExample], neighbours: int, batch_size: int,
                 show_progress: bool) -> list[RelationPrediction]:
        """`predict` for examples that all fit the encoder."""
        if not examples:
            return []
        vectors, p_model = self.encode(examples, batch_size, show_progress)
        searches = self.search(vectors, at_least=neighbours)
        methods = self.distributions(p_model, searches)
        p = self.final(methods)
        best, space = p.argmax(-1), self.label_space

        def under(method: str, i: int, b: int) -> float | None:
            return float(methods[method][i, b]) if method in methods else None

        return [RelationPrediction(space[b], float(p[i, b]), self._neighbours(searches, i, neighbours),
                                   p_model=under("vanilla", i, b), p_knn=under("knn", i, b))
                for i, b in enumerate(best)]

    # -- dev tuning and evaluation ---------------------------------------------------------
    def score_fn(self, gold: np.ndarray) -> ScoreFn:
        """Micro-F1 without the negative label, vectorised over rows of predictions."""
        from knnie.evaluation.relations import micro_f1_ids

        space, negative = self.label_space, self.negative_label
        neg = space.index(negative) if negative in space else None
        return lambda pred: micro_f1_ids(pred, gold, neg)

    def _dev_score(self, dev: list[RelationExample]) -> ScoreFn:
        """Refuses a dev set of negatives only: micro-F1 without them is 0 at every setting."""
        gold = self.label_ids(dev)
        negative = self.negative_label
        if negative in self.label_space and (gold == self.label_space.index(negative)).all():
            raise KnnieError(f"every dev example is '{negative}': micro-F1 without it is 0 at every setting, "
                             "so there is nothing to tune on; give dev examples of the relations")
        return self.score_fn(gold)

    def evaluate(self, examples: list[RelationExample], batch_size: int = 64,
                 show_progress: bool = False) -> dict[str, dict]:
        """Scores of vanilla, kNN-only and kNN-RE side by side (see `relation_report`)."""
        from knnie.evaluation.relations import relation_report

        space = self.label_space
        gold = [space[i] for i in self.label_ids(examples)]
        p, _ = self.method_distributions(examples, batch_size, show_progress)
        return {method: relation_report(gold, [space[i] for i in probs.argmax(-1)], self.negative_label)
                for method, probs in p.items()}
