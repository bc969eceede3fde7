"""`MemoryAugmentedModel`: what every front class (RelationExtractor, EntityRecognizer) shares.

A representer turns examples into vectors; a classifier head over them (absent in a headless
model, which predicts from memories alone) and memories of labelled vectors are consulted:
p = λ·p_kNN + (1 − λ)·p_model per memory, with k, T, λ and the kernel tuned on dev (λ = 1
without a head). The model directory is written and read here for every task (its layout and
checks: `knnie.tasks.model_dir`); the encoder is the only part each task writes itself.

A subclass says how it builds its representer, how dev is scored and what a prediction looks like.
"""

from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

import numpy as np
import torch

from knnie.data.files import FilePart
from knnie.data.schema import Neighbour
from knnie.encoders.device import resolve_device
from knnie.encoders.representer import Representer
from knnie.errors import DataError, IncompatibleArtefactError, KnnieError, NotFoundError, check_count
from knnie.io import atomic_dir, locked, read_json, read_safetensors, recover, remove_dir
from knnie.memory.knn import interpolate, knn_probs
from knnie.memory.memory import NAME, Memory, check_name
from knnie.memory.tuner import (
    DEPTH_TOLERANCE,
    LAMBDA_GRID,
    KnnParams,
    ScoreFn,
    choose_depth,
    tune_grid,
    tune_weights,
)
from knnie.tasks import model_dir
from knnie.tasks.task_model import TaskModel

log = logging.getLogger(__name__)
# a weak default for an attached memory that was never tuned; `tune` replaces it
UNTUNED = KnnParams(k=16, temperature=1.0, lam=0.5, kernel="rbf")
TUNE_K = 256  # neighbours fetched once per memory for tuning: the largest k of the grid
MAX_MIX = 6  # memories whose mix weights are tuned (the grid has 11^n candidates); more are averaged

# memory name -> (squared L2 distances, key ids), each (n, k), nearest first
Searches = dict[str, tuple[np.ndarray, np.ndarray]]


class TaskConfig(Protocol):
    """The fields of a task's config dataclass that the shared code reads and writes."""

    knn: dict[str, dict]  # memory name -> tuned KnnParams
    knn_only: dict[str, dict]  # memory name -> best params at λ = 1
    mix: dict[str, float] | None  # memory name -> weight in the mix of memories, tuned on dev
    fingerprint: str
    head: bool  # False: no classifier, predictions come from memories alone


E = TypeVar("E")  # the task's example: RelationExample, TaggedSentence
C = TypeVar("C", bound=TaskConfig)


class MemoryAugmentedModel(ABC, Generic[E, C]):
    """A representer with a classifier head (`model.classifier`, None when headless) that consults
    attached memories."""

    config_class: ClassVar[type]  # the task's config dataclass, saved as knnie_config.json
    config_what: ClassVar[str]  # names the config in errors: "relation model", "NER model"
    label_word: ClassVar[str]  # what the classes are called in errors: "labels", "tags"
    knn_method: ClassVar[str]  # the name of the interpolated method in `distributions`
    task: ClassVar[str]  # saved in the config as `task`; `knnie.load` picks the class by it

    def __init__(self, model: TaskModel, config: C) -> None:
        self.model, self.config = model, config
        self.memories: dict[str, Memory] = {}
        self._fingerprint: str | None = None
        self._checksums: dict[str, str] | None = None  # of the model files, known once saved or loaded

    # -- what each task supplies -----------------------------------------------------------
    @property
    @abstractmethod
    def labels(self) -> list[str]:
        """The classes of the head, in the order of its outputs (none when headless)."""

    @property
    def label_space(self) -> list[str]:
        """The classes predictions range over: the head's, then (sorted) those only a memory holds.
        Memories are aligned to it by label name; p_model is 0 on the labels the head never saw."""
        extra = {label for memory in self.memories.values() for label in memory.labels} - set(self.labels)
        return list(self.labels) + sorted(extra)

    @classmethod
    @abstractmethod
    def _from_encoder(cls, path: Path, config: C) -> Self:
        """An instance whose encoder is read from `path` (a saved `encoder/`) and whose head is fresh."""

    @abstractmethod
    def _save_encoder(self, path: Path) -> None:
        """Write what `_from_encoder` reads back."""

    @staticmethod
    @abstractmethod
    def read_examples(path: str | Path | FilePart) -> list[E]:
        """The labelled examples of a file, or of a part of one (what a sharded build reads)."""

    @abstractmethod
    def memory_entries(self, examples: list[E], batch_size: int = 64, show_progress: bool = False
                       ) -> tuple[np.ndarray, list[str], list[dict[str, Any]]]:
        """The keys (`encode`'s vectors), label names and records a memory of these labelled examples holds."""

    def build_memory(self, examples: list[E], index: str = "auto", fp16: bool = False, batch_size: int = 64,
                     show_progress: bool = False, source: str = "default", code_size: int = 32) -> Memory:
        """A memory of these labelled examples (their labels need not be the head's), as source `source`."""
        keys, labels, records = self.memory_entries(examples, batch_size, show_progress)
        return Memory.from_labels(keys, labels, records, self.fingerprint, index=index, fp16=fp16, source=source,
                                  code_size=code_size)

    @abstractmethod
    def _dev_score(self, dev: list[E]) -> ScoreFn:
        """The tuning score of rows of predicted class ids against the gold of `dev`."""

    @classmethod
    def _check_config(cls, raw: Any, path: Path) -> None:
        """Refuse a config that is not a JSON object, or whose tuned settings are unsound (a
        task adds its own checks): each error names the file and the field."""
        if not isinstance(raw, dict):
            raise DataError("not a JSON object", path=path)
        if raw.get("task") != cls.task:
            raise DataError(f"task is {raw.get('task')!r}, not {cls.task!r}: this is not a {cls.config_what}; "
                            "knnie.load(path) opens any knnie model", path=path, field="task")
        for table in ("knn", "knn_only"):
            chosen = raw.get(table, {})
            if not isinstance(chosen, dict):
                raise DataError("needs an object: memory name -> settings", path=path, field=table)
            for name, params in chosen.items():
                KnnParams.from_dict(params, path, f"{table}.{name}")
        mix = raw.get("mix")
        weights = list(mix.values()) if isinstance(mix, dict) else None
        if mix is not None and not (weights and all(isinstance(w, int | float) and 0 <= w <= 1 for w in weights)
                                    and abs(sum(weights) - 1) < 1e-6):
            raise DataError(f"needs memory name -> weight, weights in [0, 1] summing to 1; found {mix!r}",
                            path=path, field="mix")
        if not isinstance(raw.get("head", True), bool):
            raise DataError(f"needs true or false (whether the model has a classifier head), found {raw['head']!r}",
                            path=path, field="head")

    # -- construction and persistence ------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, memories: bool = True, device: str | torch.device = "auto") -> Self:
        """Load a model directory written by `save_pretrained`, with its memories, onto `device`
        ("auto": a CUDA GPU if there is one); every file is verified against the checksums saved with it."""
        target = resolve_device(device)
        path = Path(path)
        raw, checksums = model_dir.read_config(path)
        config_path = path / model_dir.CONFIG_FILE
        cls._check_config(raw, config_path)
        try:
            config = cls.config_class(**raw)
        except TypeError as e:
            raise DataError(f"not a knnie {cls.config_what} config ({e})", path=config_path) from e
        front = cls._from_encoder(path / "encoder", config)
        front._checksums = checksums
        head = path / model_dir.HEAD_FILE
        try:
            if front.has_head:
                front.model.classifier.load_state_dict(read_safetensors(head, framework="torch"))
        except RuntimeError as e:
            raise IncompatibleArtefactError(
                f"{head}: classifier does not fit {len(front.labels)} {cls.label_word} ({e})") from e
        model_dir.check_fingerprint(path, front.fingerprint, config.fingerprint)
        if memories:
            front._load_memories(path)
        return front.to(target)

    def _load_memories(self, path: Path) -> None:
        """Attach every memory of a model directory; tuned settings without their memory are reported."""
        found = path / model_dir.MEMORIES
        for mem_dir in sorted(found.iterdir()) if found.is_dir() else []:
            if mem_dir.name.startswith("."):
                continue  # locks and the debris of interrupted writes
            if not mem_dir.is_dir() or not NAME.fullmatch(mem_dir.name):
                log.warning("%s: not a memory written by knnie; ignored", mem_dir)
                continue
            self.attach_memory(mem_dir.name, Memory.load(mem_dir))
        for name in sorted(set(self.config.knn) - set(self.memories)):
            log.warning("%s: memory '%s' has tuned settings but no directory; predicting without it",
                        path, name)

    def save_pretrained(self, path: str | Path, overwrite: bool = False) -> None:
        """Write encoder, classifier (unless headless), config and memories, atomically, with checksums
        of every file.

        A non-empty directory that is not a knnie model is refused unless `overwrite`; replacing a
        model keeps the files the user added and the memories these weights can still read."""
        from safetensors.torch import save_file

        path = model_dir.check_target(path, overwrite)
        self.config.fingerprint = self.fingerprint
        with atomic_dir(path) as tmp:
            kept = model_dir.carried_over(path, self.fingerprint, set(self.memories))
            self._save_encoder(tmp / "encoder")
            if self.has_head:
                save_file({k: v.contiguous() for k, v in self.model.classifier.state_dict().items()},
                          str(tmp / model_dir.HEAD_FILE))
            self._checksums = model_dir.model_checksums(tmp)
            self.save_config(tmp)
            for name, memory in self.memories.items():
                memory.save(model_dir.memory_dir(tmp, name))
            model_dir.carry(kept, path, tmp)

    def save_config(self, path: str | Path) -> None:
        """Rewrite only knnie_config.json (after tuning), atomically, keeping the checksums of the
        model files beside it."""
        model_dir.write_config(path, self.config, self._checksums)

    def save_memory(self, path: str | Path, name: str) -> Path:
        """Write attached memory `name` into the model directory `path` (atomically); returns its directory."""
        target = model_dir.memory_dir(path, name)
        self.memories[name].save(target)
        return target

    @property
    def fingerprint(self) -> str:
        """A hash of the representation (encoder weights and pooling, not the head): a memory's
        keys are only valid for the representation that made them."""
        if self._fingerprint is None:
            self._fingerprint = self.representer.fingerprint()
        return self._fingerprint

    # -- representation and device ---------------------------------------------------------
    @property
    def representer(self) -> Representer:
        """What turns examples into vectors; usable on its own (`representer.encode(items)`)."""
        return self.model.representer

    @property
    def has_head(self) -> bool:
        return self.model.classifier is not None

    @property
    def device(self) -> torch.device:
        return self.representer.device

    def to(self, device: str | torch.device) -> Self:
        """Move the model to `device` ("auto", "cpu", "cuda", "cuda:N"); memories stay on the CPU."""
        self.model.to(resolve_device(device))
        return self

    def encode(self, examples: list[E], batch_size: int = 64,
               show_progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Vectors (n, d), the keys and queries of memories, and the classifier's p_model (n, C),
        in one pass; a headless model's p_model is (n, 0)."""
        self.model.eval()
        return self.representer.encode_with(examples, self.model.classifier, batch_size, show_progress)

    def weights_changed(self) -> None:
        """Call after training: the fingerprint must be recomputed."""
        self._fingerprint = None

    # -- memories --------------------------------------------------------------------------
    def attach_memory(self, name: str, memory: Memory) -> None:
        """Consult `memory` at prediction time (refused if another model built it; `name` must be a
        plain name, since it names the memory's directory)."""
        check_name(name)
        memory.check_compatible(self.fingerprint, f"memory '{name}'")
        self.memories[name] = memory

    # -- live memories: examples added and removed without retraining ------------------------
    def add_examples(self, examples: list[E], memory: str = "live", source: str = "added",
                     save_to: str | Path | None = None, batch_size: int = 64) -> int:
        """Remember labelled examples without retraining: encode them and add them to memory `memory`
        (made if absent) as source `source`; the next prediction consults them, and a label the head
        never saw joins the label space (predicted through p_kNN, see `knnie.memory.knn.interpolate`).
        With `save_to` (this model's directory) the memory saved there is what grows: it is re-read
        under a lock, so that additions by other processes are kept, written atomically (a crash leaves
        the previous one) and attached here. Returns the number of entries added (a NER sentence gives
        one per word); `remove_examples(source)` undoes it."""
        check_name(memory)
        added = self.build_memory(examples, batch_size=batch_size, source=source)
        self._edit_memory(memory, save_to, lambda current: added if current is None else Memory.merge([current, added]))
        return len(added)

    def remove_examples(self, source: str, memory: str | None = None, save_to: str | Path | None = None) -> int:
        """Forget every entry of `source` in memory `memory`, or in every memory that holds it; a memory
        left empty is detached (and deleted from `save_to`). With `save_to` the memories saved there
        change, as in `add_examples`. Returns the number of entries removed."""
        held = self._memory_sources(save_to)
        names = [check_name(memory)] if memory is not None else [n for n, s in held.items() if source in s]
        if not names:
            found = sorted({s for sources in held.values() for s in sources})
            raise NotFoundError(f"no memory holds source '{source}' (sources: {', '.join(found) or 'none'})")
        removed = 0

        def forget(name: str, current: Memory | None) -> Memory | None:
            nonlocal removed
            if current is None:
                raise NotFoundError(f"no memory '{name}' (memories: {', '.join(sorted(held)) or 'none'})")
            if current.sources == [source]:
                removed += len(current)
                return None
            kept = Memory.merge([current])  # a copy: the attached memory changes only once the change is saved
            removed += kept.remove(source)
            return kept

        for name in names:
            self._edit_memory(name, save_to, functools.partial(forget, name))
        return removed

    def _memory_sources(self, save_to: str | Path | None) -> dict[str, list[str]]:
        """The sources of each memory: the attached ones, and with `save_to` those saved there
        (which another process may have changed)."""
        found = {name: list(m.sources) for name, m in self.memories.items()}
        for config in sorted((Path(save_to) / model_dir.MEMORIES).glob("*/memory.json")) if save_to else []:
            raw = read_json(config, "memory config")
            if NAME.fullmatch(config.parent.name) and isinstance(raw, dict):
                found[config.parent.name] = list(raw.get("sources", []))
        return found

    def _edit_memory(self, name: str, save_to: str | Path | None, change: Callable[[Memory | None], Memory | None]
                     ) -> None:
        """Replace memory `name` by `change(current)` (None: absent, or delete it) and attach the result.
        With `save_to`, under the memory's edit lock: the saved memory, where there is one, is `current`,
        and the result replaces it atomically, then is attached here (still under the lock, so that
        of two threads the later writer's memory, which holds both changes, is the one attached)."""
        if save_to is None:
            self._attach_or_drop(name, change(self.memories.get(name)))
            return
        self._check_model_dir(Path(save_to))
        target = model_dir.memory_dir(save_to, name)
        with locked(target.with_name(f"{target.name}.edit")):
            recover(target)
            result = change(Memory.load(target) if target.is_dir() else self.memories.get(name))
            if result is None:
                remove_dir(target)
            else:
                result.check_compatible(self.fingerprint, f"memory '{name}'")
                result.save(target)
            self._attach_or_drop(name, result)

    def _attach_or_drop(self, name: str, memory: Memory | None) -> None:
        if memory is None:
            self.memories.pop(name, None)
        else:
            self.attach_memory(name, memory)

    def _check_model_dir(self, path: Path) -> None:
        """Refuse to change memories in a directory that is not a saved model of these weights."""
        raw = read_json(path / model_dir.CONFIG_FILE, "knnie model config")
        saved = raw.get("fingerprint") if isinstance(raw, dict) else None
        if saved != self.fingerprint:
            raise IncompatibleArtefactError(
                f"{path} is not a saved copy of this model (its weights' fingerprint is {saved}, this model's "
                f"{self.fingerprint}): memories are saved with the model whose vectors they hold")

    def params(self, name: str, knn_only: bool = False) -> KnnParams:
        """The tuned settings of memory `name` (at λ = 1 if knn_only), or UNTUNED; λ is 1 without a head."""
        table = "knn_only" if knn_only else "knn"
        chosen = getattr(self.config, table).get(name)
        params = KnnParams.from_dict(chosen, field=f"{table}.{name}") if chosen else UNTUNED
        return replace(params, lam=1.0) if knn_only or not self.has_head else params

    def search(self, vectors: np.ndarray, k: int | None = None, at_least: int = 0, exact: bool = False) -> Searches:
        """Search every memory once, k deep or as deep as its settings (and `at_least`) need, at
        the search depth tuned for it (approximate memories), or exactly."""
        if k is not None:
            check_count(k, 1, "k")
        check_count(at_least, 0, "at_least")
        need = {name: max(at_least, self.params(name).k, self.params(name, True).k) for name in self.memories}
        pooled = self._pooled()
        return {name: memory.search(vectors, k or (max(need.values()) if name in pooled else need[name]),
                                    depth=self.params(name).depth, exact=exact)
                for name, memory in self.memories.items()}

    def _pooled(self) -> list[str]:
        """The memories without tuned settings (e.g. one `add_examples` made) when others have some.
        Their entries are searched as part of each tuned memory, one kNN over the union with its
        settings, not averaged with it: a few added examples then compete with the tuned memory's
        entries for each query's neighbours instead of weighing as much as all of them (a memory of
        new labels only would put half the mass on them for every query)."""
        untuned = [name for name in self.memories if name not in self.config.knn]
        return untuned if len(untuned) < len(self.memories) else []

    # -- distributions ---------------------------------------------------------------------
    def _in_space(self, p_model: np.ndarray, space: list[str]) -> np.ndarray:
        """p_model (n, head labels) widened to the label space: 0 for labels only memories hold."""
        return np.pad(p_model, ((0, 0), (0, len(space) - p_model.shape[1])))

    def _space_ids(self, name: str, ids: np.ndarray, space: list[str]) -> np.ndarray:
        """The labels of memory `name`'s entries `ids` as ids into the label space (aligned by name)."""
        memory = self.memories[name]
        position = {label: i for i, label in enumerate(space)}
        return np.array([position[label] for label in memory.labels])[memory.values[ids]]

    def memory_distributions(self, p_model: np.ndarray, searches: Searches,
                             knn_only: bool = False) -> dict[str, np.ndarray]:
        """λ·p_kNN + (1 − λ)·p_model over the label space for each memory with its own settings
        (λ = 1 if knn_only); memories without settings are pooled into the tuned ones (`_pooled`)."""
        pooled = self._pooled()
        extra = {name: searches[name] for name in pooled}
        return {name: self._memory_distribution(name, self.params(name, knn_only), p_model, searches[name],
                                                pooled=extra)
                for name in self.memories if name not in pooled}

    def _memory_distribution(self, name: str, params: KnnParams, p_model: np.ndarray,
                             search: tuple[np.ndarray, np.ndarray], head_blind: bool = True,
                             pooled: Searches | None = None) -> np.ndarray:
        """λ·p_kNN + (1 − λ)·p_model of one memory's search with these settings, over the label space,
        its k neighbours taken from it and the `pooled` memories' searches together; the head has no
        opinion on labels it never saw (`interpolate`'s `known`) unless not `head_blind` (the plain
        formula, which gives them (1 − λ)·0)."""
        space, k = self.label_space, params.k
        parts = {name: search, **(pooled or {})}
        dist = np.concatenate([d[:, :k] for d, _ in parts.values()], axis=1)
        labels = np.concatenate([self._space_ids(n, ids[:, :k], space) for n, (_, ids) in parts.items()], axis=1)
        if len(parts) > 1:
            nearest = np.argsort(dist, axis=1, kind="stable")[:, :k]
            dist, labels = np.take_along_axis(dist, nearest, 1), np.take_along_axis(labels, nearest, 1)
        p_knn = knn_probs(dist, labels, len(space), params.temperature, params.kernel)
        return interpolate(p_knn, self._in_space(p_model, space), params.lam,
                           len(self.labels) if head_blind else None)

    def _combine(self, per_memory: dict[str, np.ndarray]) -> np.ndarray:
        """One distribution from those of several memories: the mix tuned on dev when it covers
        exactly these memories, else their mean."""
        weights = self.config.mix or {}
        if set(weights) != set(per_memory):
            return np.mean(list(per_memory.values()), axis=0)
        return sum(w * per_memory[name] for name, w in weights.items())

    def distributions(self, p_model: np.ndarray, searches: Searches) -> dict[str, np.ndarray]:
        """p for each method over the label space: 'vanilla' (p_model) and, with memories, 'knn'
        (λ = 1) and `knn_method` ('knn_re', 'knn_ner'), each memory with its own k, T, λ. A
        headless model has 'knn' alone, and needs a memory."""
        if not self.has_head:
            if not self.memories:
                raise KnnieError("this model has no classifier head: it predicts from memories alone; attach one "
                                 "(build_memory, attach_memory)")
            return {"knn": self._combine(self.memory_distributions(p_model, searches, knn_only=True))}
        out = {"vanilla": self._in_space(p_model, self.label_space)}
        if self.memories:
            out["knn"] = self._combine(self.memory_distributions(p_model, searches, knn_only=True))
            out[self.knn_method] = self._combine(self.memory_distributions(p_model, searches))
        return out

    def final(self, p: dict[str, np.ndarray]) -> np.ndarray:
        """The distribution predictions come from: kNN-interpolated with memories, else the head's
        (a headless model's: kNN only)."""
        return p.get(self.knn_method, p.get("knn", p.get("vanilla")))

    def method_distributions(self, examples: list[E], batch_size: int = 64, show_progress: bool = False
                             ) -> tuple[dict[str, np.ndarray], Searches]:
        """Encode, search every memory once, and return `distributions` with the searches."""
        vectors, p_model = self.encode(examples, batch_size, show_progress)
        searches = self.search(vectors)
        return self.distributions(p_model, searches), searches

    def _neighbours(self, searches: Searches, row: int, n: int) -> list[Neighbour]:
        """The n nearest memory entries of query `row`, over all memories, nearest first."""
        found = [Neighbour(name, self.memories[name].labels[int(self.memories[name].values[j])], float(d),
                           self.memories[name].records[j])
                 for name, (dist, ids) in searches.items() for d, j in zip(dist[row, :n], ids[row, :n])]
        return sorted(found, key=lambda nb: nb.distance)[:n]

    # -- dev tuning ------------------------------------------------------------------------
    def tune(self, dev: list[E], batch_size: int = 64, show_progress: bool = False) -> dict[str, Any]:
        """Choose k, T, λ, kernel per memory by the dev score, and the best point at λ = 1 (kNN
        only); then how memories combine, where the task tunes that. Each memory is searched once
        (k_max = 256, exact even on approximate memories) and every grid point computed from that
        search; an approximate memory then gets the smallest k and the cheapest search depth that
        lose at most DEPTH_TOLERANCE of dev score each (see `knnie.memory.tuner`). Without a head λ
        is 1: only k, T and the kernel are searched, and there is no vanilla score."""
        if not self.memories:
            raise KnnieError("no memory attached: build one (build_memory) and attach it before tuning")
        if not dev:
            raise KnnieError("the dev set is empty: there is nothing to tune on")
        score = self._dev_score(dev)  # refuses a dev set it cannot score, before any setting changes
        vectors, p_model = self.encode(dev, batch_size, show_progress)
        searches = self.search(vectors, k=TUNE_K, exact=True)
        space = self.label_space
        report: dict[str, Any] = {"memories": {}}
        if self.has_head:
            report["vanilla_f1"] = float(score(p_model.argmax(-1)[None])[0])
        lambdas = LAMBDA_GRID if self.has_head else (1.0,)
        for name, (dist, ids) in searches.items():
            grid = tune_grid(dist, self._space_ids(name, ids, space), self._in_space(p_model, space), score,
                             lambdas=lambdas, known=len(self.labels))
            slack = 0.0 if self.memories[name].exact else DEPTH_TOLERANCE
            best, f1 = grid.choose(tolerance=slack)
            only, only_f1 = grid.choose(1.0, slack, max_k=None if self.memories[name].exact else best.k)
            self.config.knn[name], self.config.knn_only[name] = asdict(best), asdict(only)
            report["memories"][name] = {"params": self.config.knn[name], "dev_f1": f1, "knn_only_dev_f1": only_f1}
            if not self.memories[name].exact:
                report["memories"][name]["search"] = self._tune_depth(name, vectors, p_model, score, f1)
        if any(not m.exact for m in self.memories.values()):
            searches = self.search(vectors)  # what prediction will see
        self._tune_mix(p_model, searches, score, report)
        return report

    def _tune_depth(self, name: str, vectors: np.ndarray, p_model: np.ndarray, score: ScoreFn,
                    exact_f1: float) -> dict[str, Any]:
        """Choose (and save in both settings) the cheapest search depth of approximate memory
        `name` that keeps its dev score within DEPTH_TOLERANCE of the exact search's."""
        memory, params = self.memories[name], self.params(name)
        k = max(params.k, self.params(name, True).k)

        def score_at(depth: int) -> float:
            p = self._memory_distribution(name, params, p_model, memory.search(vectors, k, depth=depth))
            return float(score(p.argmax(-1)[None])[0])

        depth, tried = choose_depth(memory.depths(k), score_at, exact_f1)
        self.config.knn[name]["depth"] = self.config.knn_only[name]["depth"] = depth
        return {"index": memory.config.index, "k": k, "exact_dev_f1": exact_f1, "depth": depth, "tried": tried}

    def _tune_mix(self, p_model: np.ndarray, searches: Searches, score: ScoreFn, report: dict[str, Any]) -> None:
        """With several memories, the weights of their mix on dev (after each memory's own settings).
        Memories are ordered by their own dev score, so ties favour the better one."""
        self.config.mix = None
        if len(self.memories) < 2:
            return
        if len(self.memories) > MAX_MIX:
            log.warning("%d memories: their mix is not tuned above %d; they are averaged", len(self.memories), MAX_MIX)
            return
        per = self.memory_distributions(p_model, searches)
        names = sorted(per, key=lambda n: -report["memories"][n]["dev_f1"])
        weights, best = tune_weights([per[n] for n in names], score)
        self.config.mix = dict(zip(names, weights))
        report["mix"] = {"weights": self.config.mix, "dev_f1": best}
