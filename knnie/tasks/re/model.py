"""The PURE-style relation classifier and `RelationExtractor`, knnie's front class for RE.

Relation vector x = encoder hidden state at the head start marker ⊕ at the tail start
marker; a linear layer gives p_RE(y|x). Attached memories turn p_RE into kNN-RE:
p = λ·p_kNN + (1 − λ)·p_RE, and with two memories p = α·p(first) + (1 − α)·p(second).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from knnie.data.schema import NO_RELATION, Neighbour, RelationExample
from knnie.encoders.loading import DEFAULT_ENCODER, load_encoder
from knnie.encoders.markers import EntitiesTooFarApart, encode, marker_tokens, refusal, too_long
from knnie.errors import DataError, KnnieError
from knnie.memory.memory import Memory
from knnie.memory.tuner import ScoreFn
from knnie.progress import track
from knnie.tasks.base import MemoryAugmentedModel, check_count
from knnie.tasks.training import batch_order

log = logging.getLogger(__name__)
NEGATIVE_LABELS = (NO_RELATION, "Other", "NA", "None")


@dataclass
class REConfig:
    """Everything needed to rebuild a relation extractor, saved as knnie_config.json."""

    labels: list[str]
    encoder: str = DEFAULT_ENCODER
    entity_types: list[str] = field(default_factory=list)
    negative_label: str | None = None
    max_length: int = 256
    dropout: float = 0.1
    knn: dict[str, dict] = field(default_factory=dict)  # memory name -> tuned KnnParams
    knn_only: dict[str, dict] = field(default_factory=dict)  # memory name -> best params at λ = 1
    mix: dict[str, float] | None = None  # memory name -> weight in the mix, tuned on dev
    fingerprint: str = ""
    task: str = "relation-extraction"


class RelationModel(nn.Module):
    """Encoder + linear layer over [h_head_start ; h_tail_start]."""

    def __init__(self, encoder: nn.Module, n_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * encoder.config.hidden_size, n_labels)

    def forward(self, input_ids, attention_mask, head_pos, tail_pos) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        rows = torch.arange(hidden.size(0), device=hidden.device)
        x = torch.cat([hidden[rows, head_pos], hidden[rows, tail_pos]], dim=-1)
        return x, self.classifier(self.dropout(x))


@dataclass
class RelationPrediction:
    """The relation of one example; with no answer (its entities do not fit the encoder) the
    label and probability are None and `reason` says why."""

    label: str | None
    probability: float | None
    neighbours: list[Neighbour]
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_row(self, example: RelationExample) -> dict[str, Any]:
        """What `knnie predict` writes for `example`: its text and mentions (character offsets
        into that text), the prediction, its probability, the neighbours, and the reason when
        there is no answer."""
        row = {**example.to_row(), "prediction": self.label, "probability": self.probability,
               "neighbours": [n.to_row() for n in self.neighbours]}
        if self.reason is not None:
            row["reason"] = self.reason
        return row


class RelationExtractor(MemoryAugmentedModel[RelationExample, REConfig]):
    """Classify the relation between a head and a tail entity, consulting memories.

    Persistence, memories, kNN interpolation, the mix of several memories and tuning come from
    `MemoryAugmentedModel`.

    >>> re = RelationExtractor.from_pretrained("model_dir")
    >>> re.predict([example], neighbours=3)[0].label
    """

    config_class = REConfig
    config_what = "relation model"
    label_word = "labels"
    knn_method = "knn_re"
    task = "relation-extraction"
    representation = "re: encoder states at the head and tail start markers"

    def __init__(self, model: RelationModel, tokenizer, config: REConfig) -> None:
        super().__init__(model, config)
        self.tokenizer = tokenizer

    @property
    def labels(self) -> list[str]:
        return self.config.labels

    # -- construction and persistence ------------------------------------------------------
    @classmethod
    def new(cls, labels: list[str], encoder: str = DEFAULT_ENCODER, entity_types: list[str] = (),
            negative_label: str | None = None, max_length: int = 256, dropout: float = 0.1) -> RelationExtractor:
        """An untrained extractor: the encoder with marker tokens added and a fresh head."""
        if len(set(labels)) < 2 or len(set(labels)) != len(labels):
            raise KnnieError(f"a relation extractor needs two labels or more, each once; got {list(labels)}")
        if negative_label is not None and negative_label not in labels:
            raise KnnieError(f"the negative label '{negative_label}' is not one of the labels {list(labels)}")
        if negative_label is None:
            negative_label = next((n for n in NEGATIVE_LABELS if n in labels), None)
        base, tokenizer = load_encoder(encoder)
        tokenizer.add_special_tokens({"additional_special_tokens": marker_tokens(sorted(entity_types))})
        base.resize_token_embeddings(len(tokenizer))
        config = REConfig(labels=list(labels), encoder=str(encoder), entity_types=sorted(entity_types),
                          negative_label=negative_label, max_length=min(max_length, tokenizer.model_max_length),
                          dropout=dropout)
        return cls(RelationModel(base, len(labels), dropout), tokenizer, config)

    @classmethod
    def _from_encoder(cls, path: Path, config: REConfig) -> RelationExtractor:
        base, tokenizer = load_encoder(path)
        return cls(RelationModel(base, len(config.labels), config.dropout), tokenizer, config)

    def _save_encoder(self, path: Path) -> None:
        self.model.encoder.save_pretrained(path)
        self.tokenizer.save_pretrained(path)

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
                buckets: bool = True) -> list[tuple[list[int], dict[str, torch.Tensor]]]:
        """Tokenised, dynamically padded batches: (example indices, tensors), grouped by
        `batch_order`: sorted by length for inference, length-bucketed shuffles for training."""
        enc = encode(self.tokenizer, examples, set(self.config.entity_types), self.config.max_length)
        pad = self.tokenizer.pad_token_id
        out = []
        for idx in batch_order([len(ids) for ids in enc.input_ids], batch_size, shuffle, seed, buckets):
            width = max(len(enc.input_ids[i]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for r, i in enumerate(idx):
                ids[r, : len(enc.input_ids[i])] = torch.tensor(enc.input_ids[i])
                mask[r, : len(enc.input_ids[i])] = 1
            out.append((idx, {
                "input_ids": ids, "attention_mask": mask,
                "head_pos": torch.tensor([enc.head_pos[i] for i in idx]),
                "tail_pos": torch.tensor([enc.tail_pos[i] for i in idx]),
            }))
        return out

    def too_long(self, examples: list[RelationExample], refuse: bool = False) -> dict[int, EntitiesTooFarApart]:
        """The examples whose head and tail alone exceed the encoder's limit, by index: `encode`
        refuses them, `predict` answers them with no label. With `refuse`, finding any is the
        error `encode` raises (how many, and where the first are)."""
        found = too_long(self.tokenizer, examples, set(self.config.entity_types), self.config.max_length)
        if found and refuse:
            raise refusal(found, examples, self.config.max_length)
        return found

    @torch.no_grad()
    def encode(self, examples: list[RelationExample], batch_size: int = 64,
               show_progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Relation vectors (n, 2·hidden) and the classifier's p_RE (n, C)."""
        check_count(batch_size, 1, "batch_size")
        self.model.eval()
        n = len(examples)
        vectors = np.zeros((n, self.model.classifier.in_features), dtype=np.float32)
        probs = np.zeros((n, len(self.config.labels)), dtype=np.float64)
        batches = self.batches(examples, batch_size)
        for idx, batch in track(batches, "encoding", len(batches), show_progress):
            x, logits = self.model(**batch)
            vectors[idx] = x.numpy()
            probs[idx] = torch.softmax(logits.double(), dim=-1).numpy()
        return vectors, probs

    # -- memories --------------------------------------------------------------------------
    def build_memory(self, examples: list[RelationExample], index: str = "auto", fp16: bool = False,
                     batch_size: int = 64, show_progress: bool = False, source: str = "default") -> Memory:
        """A memory of these labelled examples (their labels need not be the head's): keys are this
        model's relation vectors."""
        if not examples:
            raise KnnieError("cannot build an empty memory: the data gave no examples")
        for ex in examples:
            if not isinstance(ex.label, str):
                raise DataError("missing label: a memory needs labelled examples", path=ex.source, field="label")
        vectors, _ = self.encode(examples, batch_size, show_progress)
        return Memory.from_labels(vectors, [ex.label for ex in examples], [ex.to_dict() for ex in examples],
                                  self.fingerprint, index=index, fp16=fp16, source=source)

    # -- prediction ------------------------------------------------------------------------
    def predict(self, examples: list[RelationExample], neighbours: int = 3, batch_size: int = 64,
                show_progress: bool = False) -> list[RelationPrediction]:
        """The relation of each example, its probability and the nearest memory entries. An
        example whose entities do not fit the encoder gets no answer (see `RelationPrediction`)
        and the others are still predicted."""
        check_count(neighbours, 0, "neighbours")
        check_count(batch_size, 1, "batch_size")
        unfit = self.too_long(examples)  # one tokenisation more: cheap next to the encoder
        if unfit:
            log.warning("no prediction: %s", refusal(unfit, examples, self.config.max_length))
        answers = iter(self._answers([ex for i, ex in enumerate(examples) if i not in unfit], neighbours,
                                     batch_size, show_progress))
        return [RelationPrediction(None, None, [], str(unfit[i])) if i in unfit else next(answers)
                for i in range(len(examples))]

    def _answers(self, examples: list[RelationExample], neighbours: int, batch_size: int,
                 show_progress: bool) -> list[RelationPrediction]:
        """`predict` for examples that all fit the encoder."""
        if not examples:
            return []
        vectors, p_model = self.encode(examples, batch_size, show_progress)
        searches = self.search(vectors, at_least=neighbours)
        p = self.distributions(p_model, searches)
        p = p.get(self.knn_method, p["vanilla"])
        best, space = p.argmax(-1), self.label_space
        return [RelationPrediction(space[b], float(p[i, b]), self._neighbours(searches, i, neighbours))
                for i, b in enumerate(best)]

    # -- dev tuning and evaluation ---------------------------------------------------------
    def score_fn(self, gold: np.ndarray) -> ScoreFn:
        """Micro-F1 without the negative label, vectorised over rows of predictions."""
        from knnie.evaluation.relations import micro_f1_ids

        neg = self.config.labels.index(self.config.negative_label) if self.config.negative_label else None
        return lambda pred: micro_f1_ids(pred, gold, neg)

    def _dev_score(self, dev: list[RelationExample]) -> ScoreFn:
        """Refuses a dev set of negatives only: micro-F1 without them is 0 at every setting."""
        gold = self.label_ids(dev)
        negative = self.config.negative_label
        if negative is not None and (gold == self.config.labels.index(negative)).all():
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
        return {method: relation_report(gold, [space[i] for i in probs.argmax(-1)],
                                        self.config.negative_label)
                for method, probs in p.items()}
