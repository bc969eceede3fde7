"""The PURE-style relation classifier and `RelationExtractor`, knnie's front class for RE.

Relation vector x = encoder hidden state at the head start marker ⊕ at the tail start
marker; a linear layer gives p_RE(y|x). Attached memories turn p_RE into kNN-RE:
p = λ·p_kNN + (1 − λ)·p_RE, and with two memories p = α·p(first) + (1 − α)·p(second).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from knnie.data.readers import NO_RELATION
from knnie.data.schema import RelationExample
from knnie.encoders.loading import DEFAULT_ENCODER, fingerprint, load_encoder
from knnie.encoders.markers import encode, marker_tokens
from knnie.errors import DataError, IncompatibleArtefactError, KnnieError
from knnie.io import atomic_dir, read_json, write_json
from knnie.memory.knn import interpolate, knn_probs
from knnie.memory.memory import Memory
from knnie.memory.tuner import KnnParams
from knnie.progress import track

CONFIG_FILE = "knnie_config.json"
NEGATIVE_LABELS = (NO_RELATION, "Other", "NA", "None")
# a weak default for an attached memory that was never tuned; `tune` replaces it
UNTUNED = KnnParams(k=16, temperature=1.0, lam=0.5, kernel="rbf")


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
    mix: dict[str, Any] | None = None  # {"memories": [first, second], "alpha": α}
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
class Neighbour:
    """A memory entry consulted for a prediction."""

    memory: str
    label: str
    distance: float
    record: dict[str, Any]


@dataclass
class RelationPrediction:
    label: str
    probability: float
    neighbours: list[Neighbour]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RelationExtractor:
    """Classify the relation between a head and a tail entity, consulting memories.

    >>> re = RelationExtractor.from_pretrained("model_dir")
    >>> re.predict([example], neighbours=3)[0].label
    """

    def __init__(self, model: RelationModel, tokenizer, config: REConfig) -> None:
        self.model, self.tokenizer, self.config = model, tokenizer, config
        self.memories: dict[str, Memory] = {}
        self._fingerprint: str | None = None

    # -- construction and persistence ------------------------------------------------------
    @classmethod
    def new(cls, labels: list[str], encoder: str = DEFAULT_ENCODER, entity_types: list[str] = (),
            negative_label: str | None = None, max_length: int = 256, dropout: float = 0.1) -> RelationExtractor:
        """An untrained extractor: the encoder with marker tokens added and a fresh head."""
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
    def from_pretrained(cls, path: str | Path, memories: bool = True) -> RelationExtractor:
        """Load a model directory written by `save_pretrained`, with its memories."""
        from safetensors.torch import load_file

        path = Path(path)
        raw = read_json(path / CONFIG_FILE, "knnie model config")
        try:
            config = REConfig(**raw)
        except TypeError as e:
            raise DataError(f"not a knnie relation model config ({e})", path=path / CONFIG_FILE) from e
        base, tokenizer = load_encoder(path / "encoder")
        model = RelationModel(base, len(config.labels), config.dropout)
        head = path / "head.safetensors"
        if not head.is_file():
            raise DataError("classifier weights missing", path=head)
        try:
            model.classifier.load_state_dict(load_file(str(head)))
        except RuntimeError as e:
            raise IncompatibleArtefactError(f"{head}: classifier does not fit {len(config.labels)} labels ({e})") from e
        extractor = cls(model, tokenizer, config)
        if config.fingerprint and extractor.fingerprint != config.fingerprint:
            raise IncompatibleArtefactError(
                f"{path}: the weights' fingerprint {extractor.fingerprint} differs from the one in {CONFIG_FILE} "
                f"({config.fingerprint}); the directory mixes files of different models"
            )
        if memories and (path / "memories").is_dir():
            for mem_dir in sorted((path / "memories").iterdir()):
                if mem_dir.is_dir() and not mem_dir.name.startswith("."):
                    extractor.attach_memory(mem_dir.name, Memory.load(mem_dir))
        return extractor

    def save_pretrained(self, path: str | Path) -> None:
        """Write encoder, tokenizer, classifier, config and memories, atomically."""
        from safetensors.torch import save_file

        self.config.fingerprint = self.fingerprint
        with atomic_dir(path) as tmp:
            self.model.encoder.save_pretrained(tmp / "encoder")
            self.tokenizer.save_pretrained(tmp / "encoder")
            save_file({k: v.contiguous() for k, v in self.model.classifier.state_dict().items()},
                      str(tmp / "head.safetensors"))
            write_json(tmp / CONFIG_FILE, asdict(self.config))
            for name, memory in self.memories.items():
                memory.save(tmp / "memories" / name)

    def save_config(self, path: str | Path) -> None:
        """Rewrite only knnie_config.json (after tuning), atomically."""
        write_json(Path(path) / CONFIG_FILE, asdict(self.config))

    @property
    def fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = fingerprint(self.model)
        return self._fingerprint

    def weights_changed(self) -> None:
        """Call after training: the fingerprint must be recomputed."""
        self._fingerprint = None

    # -- encoding --------------------------------------------------------------------------
    def label_ids(self, examples: list[RelationExample]) -> np.ndarray:
        """Gold label ids; an unknown label is an error naming the record."""
        index = {label: i for i, label in enumerate(self.config.labels)}
        ids = []
        for ex in examples:
            if ex.label not in index:
                raise DataError(f"label '{ex.label}' is not one of the model's {len(index)} labels",
                                path=ex.source, field="label")
            ids.append(index[ex.label])
        return np.array(ids, dtype=np.int64)

    def batches(self, examples: list[RelationExample], batch_size: int, shuffle: bool = False,
                seed: int = 0) -> list[tuple[list[int], dict[str, torch.Tensor]]]:
        """Tokenised, dynamically padded batches: (example indices, tensors). Sorted by
        length for inference, shuffled for training."""
        enc = encode(self.tokenizer, examples, set(self.config.entity_types), self.config.max_length)
        order = list(range(len(examples)))
        if shuffle:
            random.Random(seed).shuffle(order)
        else:
            order.sort(key=lambda i: len(enc.input_ids[i]))
        pad = self.tokenizer.pad_token_id
        out = []
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
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

    @torch.no_grad()
    def encode(self, examples: list[RelationExample], batch_size: int = 64,
               show_progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Relation vectors (n, 2·hidden) and the classifier's p_RE (n, C)."""
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
    def build_memory(self, examples: list[RelationExample], index: str = "flat", fp16: bool = False,
                     batch_size: int = 64, show_progress: bool = False) -> Memory:
        """A memory of these labelled examples: keys are this model's relation vectors."""
        if not examples:
            raise KnnieError("cannot build an empty memory: the data gave no examples")
        values = self.label_ids(examples)
        vectors, _ = self.encode(examples, batch_size, show_progress)
        records = [ex.to_dict() for ex in examples]
        return Memory(vectors, values, records, self.config.labels, self.fingerprint, index, fp16)

    def attach_memory(self, name: str, memory: Memory) -> None:
        """Consult `memory` at prediction time (refused if another model built it)."""
        memory.check_compatible(self.fingerprint, self.config.labels, f"memory '{name}'")
        self.memories[name] = memory

    def params(self, name: str, knn_only: bool = False) -> KnnParams:
        chosen = (self.config.knn_only if knn_only else self.config.knn).get(name)
        return KnnParams(**chosen) if chosen else UNTUNED

    # -- prediction ------------------------------------------------------------------------
    def distributions(self, p_model: np.ndarray, searches: dict[str, tuple[np.ndarray, np.ndarray]]
                      ) -> dict[str, np.ndarray]:
        """p for each method: 'vanilla' (p_RE), and with memories 'knn' (λ = 1) and 'knn_re'."""
        out = {"vanilla": p_model}
        if self.memories:
            out["knn"] = self._mix(self.memory_distributions(p_model, searches, knn_only=True))
            out["knn_re"] = self._mix(self.memory_distributions(p_model, searches))
        return out

    def method_distributions(self, examples: list[RelationExample], batch_size: int = 64, show_progress: bool = False
                             ) -> tuple[dict[str, np.ndarray], dict[str, tuple[np.ndarray, np.ndarray]]]:
        """Encode, search every memory once, and return `distributions` with the searches."""
        vectors, p_model = self.encode(examples, batch_size, show_progress)
        searches = self.search(vectors)
        return self.distributions(p_model, searches), searches

    def memory_distributions(self, p_model: np.ndarray, searches: dict[str, tuple[np.ndarray, np.ndarray]],
                             knn_only: bool = False) -> dict[str, np.ndarray]:
        """λ·p_kNN + (1 − λ)·p_RE for each memory with its own settings (λ = 1 if knn_only)."""
        out = {}
        for name, memory in self.memories.items():
            params = self.params(name, knn_only)
            dist, ids = searches[name]
            p_knn = knn_probs(dist[:, : params.k], memory.values[ids[:, : params.k]], len(self.config.labels),
                              params.temperature, params.kernel)
            out[name] = interpolate(p_knn, p_model, params.lam)
        return out

    def _mix(self, per_memory: dict[str, np.ndarray]) -> np.ndarray:
        mix = self.config.mix
        if mix and all(m in per_memory for m in mix["memories"]):
            first, second = mix["memories"]
            return interpolate(per_memory[first], per_memory[second], mix["alpha"])
        return np.mean(list(per_memory.values()), axis=0)

    def search(self, vectors: np.ndarray, k: int | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Search every memory once, as deep as any of its settings needs (or k)."""
        out = {}
        for name, memory in self.memories.items():
            depth = k or max(self.params(name).k, self.params(name, True).k)
            out[name] = memory.search(vectors, depth)
        return out

    def predict(self, examples: list[RelationExample], neighbours: int = 3, batch_size: int = 64,
                show_progress: bool = False) -> list[RelationPrediction]:
        """The relation of each example, its probability and the nearest memory entries."""
        if not examples:
            return []
        p, searches = self.method_distributions(examples, batch_size, show_progress)
        p = p.get("knn_re", p["vanilla"])
        results = []
        for i, row in enumerate(p):
            best = int(row.argmax())
            near = sorted(
                (Neighbour(name, self.config.labels[int(self.memories[name].values[j])], float(d),
                           self.memories[name].records[j])
                 for name, (dist, ids) in searches.items() for d, j in zip(dist[i, :neighbours], ids[i, :neighbours])),
                key=lambda nb: nb.distance,
            )[:neighbours]
            results.append(RelationPrediction(self.config.labels[best], float(row[best]), near))
        return results

    # -- dev tuning and evaluation ---------------------------------------------------------
    def score_fn(self, gold: np.ndarray):
        """Micro-F1 without the negative label, vectorised over rows of predictions."""
        from knnie.evaluation.relations import micro_f1_ids

        neg = self.config.labels.index(self.config.negative_label) if self.config.negative_label else None
        return lambda pred: micro_f1_ids(pred, gold, neg)

    def tune(self, dev: list[RelationExample], batch_size: int = 64, show_progress: bool = False) -> dict[str, Any]:
        """Choose k, T, λ, kernel per memory (and α for two) by dev micro-F1.

        Each memory is searched once with k_max = 256; every grid point comes from that."""
        from knnie.memory.tuner import tune_alpha, tune_grid

        if not self.memories:
            raise KnnieError("no memory attached: build one with `knnie memory build` before tuning")
        gold = self.label_ids(dev)
        score = self.score_fn(gold)
        vectors, p_model = self.encode(dev, batch_size, show_progress)
        searches = self.search(vectors, k=256)
        report: dict[str, Any] = {"vanilla_f1": float(score(p_model.argmax(-1)[None])[0]), "memories": {}}
        for name, (dist, ids) in searches.items():
            grid = tune_grid(dist, self.memories[name].values[ids], p_model, score)
            best = grid.best
            at_one = grid.scores[..., grid.lambdas.index(1.0)]
            ki, kk, ti = np.unravel_index(int(np.argmax(at_one)), at_one.shape)
            self.config.knn[name] = asdict(best)
            self.config.knn_only[name] = asdict(
                KnnParams(grid.ks[kk], grid.temperatures[ki][kk][ti], 1.0, grid.kernels[ki]))
            report["memories"][name] = {"params": asdict(best), "dev_f1": grid.best_score,
                                        "knn_only_dev_f1": float(at_one.max())}
        self.config.mix = None
        if len(self.memories) >= 2:
            names = sorted(self.memories, key=lambda n: (n != "train", n))[:2]
            per = self.memory_distributions(p_model, searches)  # with the settings just chosen
            alpha, f1 = tune_alpha(per[names[0]], per[names[1]], score)
            self.config.mix = {"memories": names, "alpha": alpha}
            report["mix"] = {**self.config.mix, "dev_f1": f1}
        return report

    def evaluate(self, examples: list[RelationExample], batch_size: int = 64,
                 show_progress: bool = False) -> dict[str, dict]:
        """Scores of vanilla, kNN-only and kNN-RE side by side (see `relation_report`)."""
        from knnie.evaluation.relations import relation_report

        gold = [self.config.labels[i] for i in self.label_ids(examples)]
        p, _ = self.method_distributions(examples, batch_size, show_progress)
        return {method: relation_report(gold, [self.config.labels[i] for i in probs.argmax(-1)],
                                        self.config.negative_label)
                for method, probs in p.items()}
