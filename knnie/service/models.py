"""The models a service holds: each opened once with `knnie.load`, named, locked and batched.

A model's lock is held by its batcher while it predicts and by a writer while it adds to or
removes from a memory, so a prediction never sees a memory half-changed and concurrent writers
are serialised (and `add_examples` re-reads the memory from disk under its file lock, so writers
in other processes are not lost either).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from knnie.errors import KnnieError
from knnie.pipeline import Pipeline
from knnie.service.batcher import Batcher
from knnie.tasks.base import MemoryAugmentedModel
from knnie.tasks.ner import EntityRecognizer
from knnie.tasks.re import RelationExtractor
from knnie.tasks.registry import load

TASK_NAMES = {RelationExtractor.task: "relation", EntityRecognizer.task: "NER"}


@dataclass
class Served:
    """A served model: its name, directory, the lock its readers and writers share, and its batcher."""

    name: str
    path: Path
    model: MemoryAugmentedModel
    lock: threading.Lock = field(default_factory=threading.Lock)
    batcher: Batcher | None = None

    @property
    def task(self) -> str:
        return self.model.task

    def describe(self) -> dict[str, Any]:
        """What /health says of the model: also the calls of its batcher and the items they took."""
        return {"task": self.task, "path": str(self.path), "labels": self.model.label_space,
                "memories": {name: {"size": len(m), "sources": list(m.sources)}
                             for name, m in self.model.memories.items()},
                "batches": {"calls": self.batcher.calls, "items": self.batcher.items}}


def parse_model_args(args: list[str]) -> dict[str, Path]:
    """`DIR` or `NAME=DIR` arguments → name → directory (a bare directory is named by its last part);
    the same name twice is an error."""
    named: dict[str, Path] = {}
    for arg in args:
        name, sep, path = arg.partition("=")
        directory = Path(path if sep else arg)
        name = name if sep else directory.resolve().name
        if name in named:
            raise KnnieError(f"two models named '{name}' ({named[name]} and {directory}): name them NAME=DIR")
        named[name] = directory
    return named


class Models:
    """Name → served model, with the pipelines (NER model + relation model) built on demand."""

    def __init__(self, dirs: Mapping[str, str | Path], device: str = "auto", max_batch: int = 64) -> None:
        if not dirs:
            raise KnnieError("no model to serve: give at least one model directory")
        self.max_batch = max_batch
        self.served: dict[str, Served] = {}
        self._pipelines: dict[tuple[str, str], Batcher] = {}
        self._guard = threading.Lock()
        for name, path in dirs.items():
            model = load(path, device=device)
            if not isinstance(model, MemoryAugmentedModel):
                raise KnnieError(f"{path}: a {model.task} model; the service serves relation and NER models")
            served = Served(name, Path(path), model)
            served.batcher = Batcher(self._predictor(model), [served.lock], max_batch, name)
            self.served[name] = served

    @staticmethod
    def _predictor(model: MemoryAugmentedModel):
        def predict(items: list[Any], params: Hashable) -> list[Any]:
            (neighbours,) = params
            return model.predict(items, neighbours=neighbours)
        return predict

    def get(self, name: str | None, task: str | None, field: str = "model") -> Served:
        """The model `name`, which must be of `task` (any task when None); without a name, the one
        model of that task. Unknown name: 404 listing the models; wrong task or ambiguous: 400."""
        kind = f"{TASK_NAMES[task]} model" if task else "model"
        if name is None:
            fits = [s for s in self.served.values() if task in (None, s.task)]
            if not fits:
                raise HTTPException(404, f"no {kind} on this server ({self.listing()})")
            if len(fits) > 1:
                raise HTTPException(400, f"several {kind}s on this server: name one in '{field}' ({self.listing()})")
            return fits[0]
        if name not in self.served:
            raise HTTPException(404, f"no model named '{name}' (field '{field}'); this server has {self.listing()}")
        served = self.served[name]
        if task not in (None, served.task):
            raise HTTPException(400, f"model '{name}' (field '{field}') is a {TASK_NAMES[served.task]} model; "
                                     f"a {kind} is needed here ({self.listing()})")
        return served

    def listing(self) -> str:
        return ", ".join(f"{name} ({TASK_NAMES[s.task]})" for name, s in self.served.items())

    def pipeline(self, ner: Served, re: Served) -> Batcher:
        """The batcher of the pipeline NER model `ner` → relation model `re` (holding both locks)."""
        with self._guard:
            key = (ner.name, re.name)
            if key not in self._pipelines:
                try:
                    pipeline = Pipeline(ner.model, re.model)
                except KnnieError as e:  # the recognizer's types are not the extractor's
                    raise HTTPException(400, f"models '{ner.name}' and '{re.name}' do not fit together: {e}") from None

                def extract(texts: list[str], params: Hashable) -> list[Any]:
                    neighbours, window = params
                    return pipeline.extract(texts, neighbours=neighbours, window=window)

                locks = [s.lock for s in sorted((ner, re), key=lambda s: s.name)]  # one order: no deadlock
                self._pipelines[key] = Batcher(extract, locks, self.max_batch, f"{ner.name}+{re.name}")
            return self._pipelines[key]

    def close(self) -> None:
        """Finish the queued requests and stop every batcher."""
        for batcher in [*self._pipelines.values(), *(s.batcher for s in self.served.values())]:
            batcher.close()
