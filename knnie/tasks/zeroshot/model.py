"""Zero-shot relation extraction from relation descriptions (EMMA, Li et al. 2024, arXiv 2406.11429).

Two stages, and an answer "none of these":

* coarse recall (dual tower): the instance vector is [h(head start marker) ; h(tail start marker)]
  (`RelationRepresenter`); a description's is two learned weighted poolings of its tokens, "virtual"
  head and tail entities (`TextRepresenter` with two heads), from the same encoder. Relations are
  ranked by cosine in a `Memory` (metric cosine) that holds the descriptions and, when the user has
  some, labelled examples of the relations (a relation's score is its best entry's).
* fine classification: a cross-encoder reads the marked instance followed by each of the top-k
  descriptions; an MLP over its head and tail marker states scores each pair, and a softmax runs
  over the k scores and a fixed score 0 for "none of these".
* the fused score of a candidate is `fusion`·p_recall + (1 − `fusion`)·p_cross; below the abstain
  threshold (calibrated on held-out seen relations in training, `calibrate`) the answer is none.

Description vectors are cached by text in the model's `descriptions` memory, so a relation file
can be edited freely: a new or changed description is encoded, an unchanged one is not.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import torch
from torch import nn

from knnie.data.descriptions import RelationType
from knnie.data.schema import Neighbour, RelationExample
from knnie.encoders.batching import batch_order, padded
from knnie.encoders.device import resolve_device, to_device
from knnie.encoders.loading import DEFAULT_ENCODER, fingerprint, load_encoder
from knnie.encoders.markers import EncodedBatch, marker_scheme, refusal
from knnie.encoders.representer import RelationRepresenter, TextRepresenter
from knnie.errors import DataError, IncompatibleArtefactError, KnnieError, check_count
from knnie.io import atomic_dir, read_safetensors
from knnie.memory.memory import Memory
from knnie.progress import track
from knnie.tasks import model_dir

log = logging.getLogger(__name__)
CROSS_DIR = "cross_encoder"
CACHE = "descriptions"  # the memory that caches description vectors by text
DESCRIPTIONS, SUPPORT = "descriptions", "support"  # sources of a relation index's entries
NONE = "none of these"
CALIBRATION_RELATIONS = 3  # held-out relations calibrating abstain needs, at least


@dataclass
class ZeroShotConfig:
    """Everything needed to rebuild a zero-shot extractor, saved as knnie_config.json."""

    encoder: str = DEFAULT_ENCODER
    markers: str = "typed"
    entity_types: list[str] = field(default_factory=list)
    max_length: int = 256
    top_k: int = 3  # relations the recall stage passes to the cross-encoder
    temperature: float = 0.05  # τ of InfoNCE, and of the recall stage's softmax(cos / τ)
    support_weight: float = 0.5  # weight of the support examples' vote in the recall stage, when there are some
    fusion: float = 0.5  # weight of p_recall in the fused score
    abstain_threshold: float | None = None  # fused score below which the answer is none (from `calibrate`)
    calibration: dict[str, Any] = field(default_factory=dict)  # what the threshold was chosen on, and its score
    fingerprint: str = ""
    head: bool = True  # the pooling and cross-encoder weights live in head.safetensors
    task: str = "zero-shot-relation-extraction"


@dataclass
class Candidate:
    """A relation the recall stage kept, with both stages' scores and the fused one."""

    id: str
    name: str
    recall: float  # cosine of the instance with the relation's description
    cross: float  # p of the cross-encoder (softmax over the candidates and none)
    fused: float


@dataclass
class ZeroShotPrediction:
    """The relation of one instance (None: abstained, or the entities do not fit the encoder, see
    `reason`), its fused score, both stages' candidates and the nearest memory entries."""

    label: str | None
    score: float | None
    candidates: list[Candidate]
    neighbours: list[Neighbour]
    reason: str | None = None

    def to_row(self, example: RelationExample) -> dict[str, Any]:
        """What `knnie zeroshot predict` writes for `example`."""
        row = {**example.to_row(), "prediction": self.label, "score": self.score,
               "candidates": [asdict(c) for c in self.candidates],
               "neighbours": [n.to_row() for n in self.neighbours]}
        if self.reason is not None:
            row["reason"] = self.reason
        return row


@dataclass
class Scores:
    """Both stages' scores of n instances against m relations (`relations`, in index order)."""

    relations: list[RelationType]
    recall: np.ndarray  # (n, m) cosine of each instance with each relation's description
    p_all: np.ndarray  # (n, m) the recall stage's p: softmax(cos / τ), mixed with the support examples' vote
    top: np.ndarray  # (n, k) relation indices of the recall stage's top k, best first
    p_recall: np.ndarray  # (n, k) p_all over the top k, renormalised
    p_cross: np.ndarray  # (n, k + 1) the cross-encoder's softmax over the top k and none (last)
    fused: np.ndarray  # (n, k)
    search: tuple[np.ndarray, np.ndarray]  # the index search behind `recall` (distances, entry ids)
    index: Memory

    def recall_at(self, gold: np.ndarray) -> float:
        """How often the gold relation index is among the top k (what the cross-encoder can recover)."""
        return float((self.top == gold[:, None]).any(1).mean())


class ZeroShotModule(nn.Module):
    """The trainable parts: the instance and description towers (one encoder) and the cross-encoder."""

    def __init__(self, instance: RelationRepresenter, describe: TextRepresenter, cross: RelationRepresenter) -> None:
        super().__init__()
        self.instance, self.describe, self.cross = instance, describe, cross
        hidden = cross.encoder.config.hidden_size
        self.scorer = nn.Sequential(nn.Linear(cross.dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    @property
    def encoders(self) -> nn.ModuleList:
        return nn.ModuleList([self.instance.encoder, self.cross.encoder])

    @property
    def heads(self) -> nn.ModuleList:
        """The weights of neither encoder (saved in head.safetensors)."""
        return nn.ModuleList([self.describe.scorer, self.scorer])

    def cross_logits(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """One score per (instance, description) pair of a padded batch of pairs."""
        return self.scorer(self.cross(**batch)).squeeze(-1)


class ZeroShotRelationExtractor:
    """Label entity pairs with relations given only by descriptions (and, optionally, a few examples).

    >>> zs = ZeroShotRelationExtractor.from_pretrained("zs_model")
    >>> zs.predict(examples, read_relation_types("relations.json"))[0].label
    """

    task = "zero-shot-relation-extraction"

    def __init__(self, module: ZeroShotModule, config: ZeroShotConfig) -> None:
        self.module, self.config = module, config
        self.cache: Memory | None = None  # description vectors by text
        self.encoded_descriptions = 0  # how many descriptions the last `relation_index` had to encode
        self._fingerprint: str | None = None
        self._checksums: dict[str, str] | None = None  # of the model files, known once saved or loaded

    # -- construction and persistence ------------------------------------------------------
    @classmethod
    def new(cls, encoder: str | Path = DEFAULT_ENCODER, top_k: int = 3, temperature: float = 0.05,
            fusion: float = 0.5, max_length: int = 256, markers: str = "typed",
            device: str | torch.device = "auto") -> ZeroShotRelationExtractor:
        """An untrained extractor: the pretrained encoder in both towers (weighted poolings start as
        the mean) and a second copy of it as the cross-encoder."""
        target = resolve_device(device)
        instance = RelationRepresenter.fresh(encoder, markers, (), max_length)
        cross = RelationRepresenter.fresh(encoder, markers, (), max_length)
        describe = TextRepresenter(instance.encoder, instance.tokenizer, "weighted", max_length, heads=2)
        config = ZeroShotConfig(encoder=str(encoder), markers=markers, max_length=instance.max_length, top_k=top_k,
                                temperature=temperature, fusion=fusion)
        _check(config)
        return cls(ZeroShotModule(instance, describe, cross), config).to(target)

    @classmethod
    def from_pretrained(cls, path: str | Path, memories: bool = True, device: str | torch.device = "auto") -> Self:
        """Load what `save_pretrained` wrote (every file verified), with its description cache."""
        target = resolve_device(device)
        path = Path(path)
        raw, checksums = model_dir.read_config(path)
        config_path = path / model_dir.CONFIG_FILE
        if raw.get("task") != cls.task:
            raise DataError(f"task is {raw.get('task')!r}, not {cls.task!r}: this is not a zero-shot model; "
                            "knnie.load(path) opens any knnie model", path=config_path, field="task")
        try:
            config = ZeroShotConfig(**raw)
        except TypeError as e:
            raise DataError(f"not a knnie zero-shot config ({e})", path=config_path) from e
        _check(config, config_path)
        scheme = marker_scheme(config.markers)
        base, tokenizer = load_encoder(path / "encoder")
        cross_base, cross_tokenizer = load_encoder(path / CROSS_DIR)
        instance = RelationRepresenter(base, tokenizer, scheme, config.entity_types, config.max_length)
        cross = RelationRepresenter(cross_base, cross_tokenizer, scheme, config.entity_types, config.max_length)
        describe = TextRepresenter(base, tokenizer, "weighted", config.max_length, heads=2)
        front = cls(ZeroShotModule(instance, describe, cross), config)
        head = path / model_dir.HEAD_FILE
        try:
            front.module.heads.load_state_dict(read_safetensors(head, framework="torch"))
        except RuntimeError as e:
            raise IncompatibleArtefactError(f"{head}: pooling and scoring weights do not fit the encoders ({e})") from e
        model_dir.check_fingerprint(path, front.fingerprint, config.fingerprint)
        front._checksums = checksums
        cache = model_dir.memory_dir(path, CACHE)
        if memories and (cache / "memory.json").is_file():
            front.cache = Memory.load(cache)
            if front.cache.config.fingerprint != front.fingerprint:
                log.warning("%s: description cache of other weights; ignored (descriptions are re-encoded)", cache)
                front.cache = None
        return front.to(target)

    def save_pretrained(self, path: str | Path, overwrite: bool = False) -> None:
        """Write both encoders, the pooling and scoring weights, the config and the description cache,
        atomically, with checksums of every file (a non-model directory is refused unless `overwrite`)."""
        from safetensors.torch import save_file

        path = model_dir.check_target(path, overwrite)
        self.config.fingerprint = self.fingerprint
        with atomic_dir(path) as tmp:
            kept = model_dir.carried_over(path, self.fingerprint, {CACHE})
            self.module.instance.save(tmp / "encoder")
            self.module.cross.save(tmp / CROSS_DIR)
            save_file({k: v.contiguous() for k, v in self.module.heads.state_dict().items()},
                      str(tmp / model_dir.HEAD_FILE))
            self._checksums = model_dir.model_checksums(tmp)
            self.save_config(tmp)
            if self.cache is not None:
                self.cache.save(model_dir.memory_dir(tmp, CACHE))
            model_dir.carry(kept, path, tmp)

    def save_config(self, path: str | Path) -> None:
        """Rewrite only knnie_config.json (after calibrating), keeping the checksums of the model files."""
        model_dir.write_config(path, self.config, self._checksums)

    def save_cache(self, path: str | Path) -> None:
        """Write the description cache into model directory `path` (after new descriptions were encoded)."""
        if self.cache is not None:
            self.cache.save(model_dir.memory_dir(path, CACHE))

    @property
    def fingerprint(self) -> str:
        """A hash of the two towers (encoder and description pooling): the space of index keys."""
        if self._fingerprint is None:
            towers = nn.ModuleList([self.module.instance.encoder, self.module.describe.scorer])
            self._fingerprint = fingerprint(towers, f"zero-shot: {self.module.instance.representation}; "
                                                    f"{self.module.describe.representation}")
        return self._fingerprint

    def weights_changed(self) -> None:
        """Call after training: the fingerprint is recomputed and cached description vectors dropped."""
        self._fingerprint, self.cache = None, None

    @property
    def device(self) -> torch.device:
        return self.module.instance.device

    def to(self, device: str | torch.device) -> Self:
        self.module.to(resolve_device(device))
        return self

    # -- the relation index ----------------------------------------------------------------
    def describe(self, relations: list[RelationType], batch_size: int = 64) -> np.ndarray:
        """The description vectors of `relations` (m, 2·hidden); cached by text, so only new or
        changed descriptions are encoded (their number is left in `encoded_descriptions`)."""
        known = {r["text"]: i for i, r in enumerate(self.cache.records)} if self.cache is not None else {}
        missing = sorted({r.text for r in relations} - set(known))
        self.encoded_descriptions = len(missing)
        if missing:
            self.module.eval()
            vectors = self.module.describe.encode(missing, batch_size)
            records = [{"text": t} for t in missing]
            if self.cache is None:
                self.cache = Memory.from_labels(vectors, missing, records, self.fingerprint, index="flat",
                                                metric="cosine", source=DESCRIPTIONS)
            else:
                self.cache.add(vectors, missing, records, DESCRIPTIONS)
            known = {r["text"]: i for i, r in enumerate(self.cache.records)}
        return self.cache.keys[[known[r.text] for r in relations]].astype(np.float32)

    def relation_index(self, relations: list[RelationType], support: list[RelationExample] = (),
                       batch_size: int = 64) -> Memory:
        """A cosine memory of the relations' descriptions and of the labelled `support` examples,
        labelled by relation id; a support label that is not among `relations` is an error."""
        ids = _check_relations(relations)
        records = [{"id": r.id, "name": r.name, "text": r.text, "kind": "description"} for r in relations]
        index = Memory.from_labels(self.describe(relations, batch_size), [r.id for r in relations], records,
                                   self.fingerprint, index="flat", metric="cosine", source=DESCRIPTIONS)
        if support:
            for ex in support:
                if ex.label not in ids:
                    raise DataError(f"support example of relation {ex.label!r}, which is not in the relations "
                                    f"({len(ids)} given)", path=ex.source, field="label")
            vectors = self.module.instance.encode(list(support), batch_size)
            index.add(vectors, [ex.label for ex in support], [{**ex.to_dict(), "kind": "example"} for ex in support],
                      SUPPORT)
        return index

    # -- scoring ---------------------------------------------------------------------------
    @torch.no_grad()
    def scores(self, examples: list[RelationExample], relations: list[RelationType],
               support: list[RelationExample] = (), top_k: int | None = None, batch_size: int = 64,
               rerank: bool = True, show_progress: bool = False) -> Scores:
        """Recall every relation for every instance, keep the top k, and score those with the
        cross-encoder (without `rerank`, the recall stage alone: p_cross is 0 and fused = p_recall)."""
        k = min(top_k or self.config.top_k, len(relations))
        check_count(k, 1, "top_k")
        self.module.eval()
        index = self.relation_index(relations, support, batch_size)
        units, n = self.module.instance.prepare(examples)  # kept: the cross-encoder reads them too
        queries = self.module.instance.encode_units(units, n, None, batch_size, show_progress)[0]
        search = index.search(queries, len(index), exact=True)
        ids = [r.id for r in relations]
        described = index.source_ids == index.sources.index(DESCRIPTIONS)
        recall = _best_per_relation(search, index, ids, described)
        p_all = _softmax(recall / self.config.temperature)
        if support:  # the examples' kNN vote, mixed in as a memory is in kNN-RE
            shown = _best_per_relation(search, index, ids, ~described)
            p_all = (1 - self.config.support_weight) * p_all + self.config.support_weight * _softmax(
                shown / self.config.temperature)
        top = np.argsort(-p_all, axis=1, kind="stable")[:, :k]
        chosen = np.take_along_axis(p_all, top, 1)
        p_recall = chosen / chosen.sum(1, keepdims=True)
        if not rerank:
            return Scores(relations, recall, p_all, top, p_recall, np.zeros((n, k + 1)), p_recall, search, index)
        logits = self._cross(units, [[relations[j].text for j in row] for row in top], batch_size, show_progress)
        p_cross = _softmax(np.concatenate([logits, np.zeros((n, 1))], axis=1))
        fused = self.config.fusion * p_recall + (1 - self.config.fusion) * p_cross[:, :k]
        return Scores(relations, recall, p_all, top, p_recall, p_cross, fused, search, index)

    def _cross(self, units: EncodedBatch, texts: list[list[str]], batch_size: int, show_progress: bool) -> np.ndarray:
        """Cross-encoder scores (n, k) of each instance with each of its k description texts."""
        n, k = len(texts), len(texts[0]) if texts else 0
        distinct = sorted({t for row in texts for t in row})
        desc = dict(zip(distinct, self.tokenizer(distinct)["input_ids"])) if distinct else {}
        pairs = [pair_ids(units.input_ids[i], desc[t], self.config.max_length) for i in range(n) for t in texts[i]]
        out = np.zeros(n * k, np.float64)
        order = batch_order([len(p) for p in pairs], batch_size)
        for idx in track(order, "cross-encoder", len(order), show_progress):
            batch = self.pair_batch([pairs[j] for j in idx], [units.head_pos[j // k] for j in idx],
                                    [units.tail_pos[j // k] for j in idx])
            out[idx] = self.module.cross_logits(to_device(batch, self.device)).double().cpu().numpy()
        return out.reshape(n, k)

    @property
    def tokenizer(self):
        return self.module.instance.tokenizer

    def pair_batch(self, pairs: list[list[int]], head_pos: list[int], tail_pos: list[int]) -> dict[str, torch.Tensor]:
        """Padded cross-encoder input: instance-and-description ids and the marker positions."""
        ids, mask = padded(pairs, self.tokenizer.pad_token_id)
        return {"input_ids": ids, "attention_mask": mask, "head_pos": torch.tensor(head_pos),
                "tail_pos": torch.tensor(tail_pos)}

    # -- prediction ------------------------------------------------------------------------
    def predict(self, examples: list[RelationExample], relations: list[RelationType],
                support: list[RelationExample] = (), top_k: int | None = None, abstain: str | float = "auto",
                neighbours: int = 3, batch_size: int = 64, show_progress: bool = False) -> list[ZeroShotPrediction]:
        """The relation of each instance among `relations` (described; `support` adds labelled
        examples of them to the same memory), or none: `abstain` is "auto" (the calibrated threshold),
        "off", or a threshold on the fused score. Instances whose entities do not fit the encoder get
        no answer, with the reason."""
        check_count(neighbours, 0, "neighbours")
        threshold = self.threshold(abstain)
        unfit = self.module.instance.too_long(examples)
        if unfit:
            log.warning("no prediction: %s", refusal(unfit, examples, self.config.max_length))
        fit = [ex for i, ex in enumerate(examples) if i not in unfit]
        answers = iter(self._answers(fit, relations, support, top_k, threshold, neighbours, batch_size,
                                     show_progress) if fit else [])
        return [ZeroShotPrediction(None, None, [], [], str(unfit[i])) if i in unfit else next(answers)
                for i in range(len(examples))]

    def threshold(self, abstain: str | float) -> float | None:
        """The abstain threshold `abstain` stands for ("auto": the calibrated one; "off": none)."""
        if abstain == "off":
            return None
        if abstain == "auto":
            if self.config.abstain_threshold is None:
                log.warning("this model was not calibrated for abstaining (no held-out relations in training): "
                            "every instance gets a relation")
            return self.config.abstain_threshold
        if isinstance(abstain, str):
            try:
                abstain = float(abstain)
            except ValueError:
                raise KnnieError(f"abstain must be auto, off or a number in [0, 1], not {abstain!r}") from None
        if not 0 <= abstain <= 1:
            raise KnnieError(f"abstain threshold must be in [0, 1], not {abstain}")
        return float(abstain)

    def _answers(self, examples: list[RelationExample], relations: list[RelationType],
                 support: list[RelationExample], top_k: int | None, threshold: float | None, neighbours: int,
                 batch_size: int, show_progress: bool) -> list[ZeroShotPrediction]:
        s = self.scores(examples, relations, support, top_k, batch_size, show_progress=show_progress)
        out = []
        for i in range(len(examples)):
            candidates = [Candidate(relations[j].id, relations[j].name, float(s.recall[i, j]),
                                    float(s.p_cross[i, c]), float(s.fused[i, c])) for c, j in enumerate(s.top[i])]
            best = max(candidates, key=lambda c: c.fused)
            near = [Neighbour(r["kind"], s.index.labels[int(s.index.values[j])], float(d), r)
                    for d, j in zip(s.search[0][i, :neighbours], s.search[1][i, :neighbours])
                    for r in [s.index.records[j]]]
            if threshold is not None and best.fused < threshold:
                out.append(ZeroShotPrediction(None, best.fused, candidates, near,
                                              f"{NONE}: best fused score {best.fused:.3f} < threshold {threshold:.3f}"))
            else:
                out.append(ZeroShotPrediction(best.id, best.fused, candidates, near))
        return out

    # -- evaluation and calibration ---------------------------------------------------------
    def gold_ids(self, examples: list[RelationExample], relations: list[RelationType]) -> np.ndarray:
        """Gold relation indices into `relations`; a label missing from them is an error naming the record."""
        index = {r.id: i for i, r in enumerate(relations)}
        out = []
        for ex in examples:
            if ex.label not in index:
                raise DataError(f"relation {ex.label!r} is not in the relations file ({len(index)} relations)",
                                path=ex.source, field="label")
            out.append(index[ex.label])
        return np.array(out, dtype=np.int64)

    def evaluate(self, examples: list[RelationExample], relations: list[RelationType],
                 support: list[RelationExample] = (), top_k: int | None = None, batch_size: int = 64,
                 show_progress: bool = False) -> dict[str, Any]:
        """Macro P/R/F1 over the relations of the recall stage alone and of the fused decision
        (every instance is assumed to express one of `relations`, as in the ZS-BERT protocol),
        and recall@k of the first stage."""
        from knnie.evaluation.relations import macro_prf

        gold = self.gold_ids(examples, relations)
        refused = self.module.instance.too_long(examples)
        if refused:
            raise refusal(refused, examples, self.config.max_length)
        s = self.scores(examples, relations, support, top_k, batch_size, show_progress=show_progress)
        fused = s.top[np.arange(len(gold)), s.fused.argmax(1)]
        names = [r.id for r in relations]
        return {"recall": macro_prf(gold, s.p_all.argmax(1), names),
                "fused": macro_prf(gold, fused, names),
                f"recall@{s.top.shape[1]}": s.recall_at(gold), "instances": len(gold), "relations": len(relations)}

    def calibrate(self, examples: list[RelationExample], relations: list[RelationType], batch_size: int = 64
                  ) -> dict[str, Any]:
        """Choose the abstain threshold on held-out **seen** relations (never the test's): each
        instance is scored once with its relation among the candidates and once with it left out
        (the right answer is then none); the threshold with the best micro-F1 over both (none
        excluded) is kept in the config."""
        gold = self.gold_ids(examples, relations)
        if len(relations) < CALIBRATION_RELATIONS:
            raise KnnieError(f"calibrating abstain needs held-out relations, {CALIBRATION_RELATIONS} or more; "
                             f"got {len(relations)}")
        inside = self.scores(examples, relations, batch_size=batch_size)
        right = inside.top[np.arange(len(gold)), inside.fused.argmax(1)] == gold
        best_in = inside.fused.max(1)
        best_out = np.zeros(len(gold))
        for j, rel in enumerate(relations):  # the same instances, their own relation left out
            rows = np.flatnonzero(gold == j)
            if len(rows):
                others = [r for r in relations if r.id != rel.id]
                best_out[rows] = self.scores([examples[i] for i in rows], others, batch_size=batch_size).fused.max(1)
        threshold, f1 = choose_threshold(best_in, right, best_out)
        off, _ = abstain_f1(best_in, right, best_out, 0.0)
        self.config.abstain_threshold = threshold
        self.config.calibration = {"relations": [r.id for r in relations], "instances": len(gold),
                                   "micro_f1": f1, "micro_f1_never_abstaining": off}
        return self.config.calibration


def pair_ids(instance: list[int], description: list[int], max_length: int) -> list[int]:
    """The marked instance's ids followed by the description's (without its leading [CLS]), the
    description cut to fit `max_length`; the instance is never cut (the markers stay in place)."""
    room = max_length - len(instance)
    if room < 2:
        return instance
    body = description[1:-1][: room - 1]
    return instance + body + description[-1:]


def abstain_f1(best_in: np.ndarray, right: np.ndarray, best_out: np.ndarray, threshold: float) -> tuple[float, float]:
    """Micro-F1 (none excluded) and the none-F1 of abstaining below `threshold`, over instances scored
    with their relation among the candidates (`best_in`, `right`: whether the top one is it) and without
    it (`best_out`: any answer is wrong)."""
    answered_in, answered_out = best_in >= threshold, best_out >= threshold
    tp = float((answered_in & right).sum())
    predicted = float(answered_in.sum() + answered_out.sum())
    p, r = tp / predicted if predicted else 0.0, tp / len(best_in)
    micro = 2 * p * r / (p + r) if p + r else 0.0
    none_tp = float((~answered_out).sum())
    none_pred = float((~answered_out).sum() + (~answered_in).sum())
    np_, nr = none_tp / none_pred if none_pred else 0.0, none_tp / len(best_out)
    return micro, 2 * np_ * nr / (np_ + nr) if np_ + nr else 0.0


def choose_threshold(best_in: np.ndarray, right: np.ndarray, best_out: np.ndarray) -> tuple[float, float]:
    """The threshold (among 0 and the observed scores) with the best micro-F1; ties: the lowest."""
    grid = np.unique(np.concatenate([[0.0], best_in, best_out]))
    f1 = [abstain_f1(best_in, right, best_out, t)[0] for t in grid]
    i = int(np.argmax(f1))
    return float(grid[i]), float(f1[i])


def _best_per_relation(search: tuple[np.ndarray, np.ndarray], index: Memory, relation_ids: list[str],
                       entries: np.ndarray) -> np.ndarray:
    """(n, m) cosine of each query with each relation's nearest entry among `entries` (a mask over
    the index: its descriptions, or its examples), relations in the order of `relation_ids`;
    -inf for a relation with no such entry."""
    dist, ids = search
    keep = entries[ids]
    cos = 1.0 - dist.astype(np.float64) / 2.0
    position = {label: i for i, label in enumerate(relation_ids)}
    labels = np.array([position[label] for label in index.labels])[index.values[ids]]
    out = np.full((len(dist), len(relation_ids)), -np.inf)
    rows = np.repeat(np.arange(len(dist)), dist.shape[1]).reshape(dist.shape)
    np.maximum.at(out, (rows[keep], labels[keep]), cos[keep])
    return out


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _check_relations(relations: list[RelationType]) -> set[str]:
    """Relation ids, refusing an empty list or a repeated id."""
    if not relations:
        raise KnnieError("no relations given: describe at least one")
    ids: dict[str, RelationType] = {}
    for r in relations:
        if r.id in ids:
            raise DataError(f"relation id {r.id!r} given twice (also at {ids[r.id].source})", path=r.source,
                            field="id")
        ids[r.id] = r
    return set(ids)


def _check(config: ZeroShotConfig, path: Path | None = None) -> None:
    """Refuse unsound settings, naming the field."""
    checks = (("top_k", isinstance(config.top_k, int) and config.top_k >= 1, "an integer ≥ 1"),
              ("temperature", isinstance(config.temperature, int | float) and config.temperature > 0, "a number > 0"),
              ("fusion", isinstance(config.fusion, int | float) and 0 <= config.fusion <= 1, "a number in [0, 1]"),
              ("support_weight", isinstance(config.support_weight, int | float) and 0 <= config.support_weight <= 1,
               "a number in [0, 1]"),
              ("abstain_threshold", config.abstain_threshold is None or (
                  isinstance(config.abstain_threshold, int | float) and 0 <= config.abstain_threshold <= 1),
               "null or a number in [0, 1]"))
    for name, ok, want in checks:
        if not ok:
            message = f"{name} must be {want}, not {getattr(config, name)!r}"
            if path is not None:
                raise DataError(message, path=path, field=name)
            raise KnnieError(message)
