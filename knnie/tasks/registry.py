"""`load`: open any saved knnie model with the front class its config names (GLiNER-style)."""

from __future__ import annotations

from pathlib import Path

import torch

from knnie.errors import DataError
from knnie.io import read_json, recover
from knnie.tasks.base import MemoryAugmentedModel
from knnie.tasks.model_dir import CONFIG_FILE
from knnie.tasks.ner import EntityRecognizer
from knnie.tasks.re import RelationExtractor
from knnie.tasks.zeroshot import ZeroShotRelationExtractor

Front = MemoryAugmentedModel | ZeroShotRelationExtractor
TASKS: dict[str, type[Front]] = {cls.task: cls for cls in (RelationExtractor, EntityRecognizer,
                                                           ZeroShotRelationExtractor)}


def load(path: str | Path, memories: bool = True, device: str | torch.device = "auto") -> Front:
    """The model saved in `path`, as the front class of its task (RelationExtractor, EntityRecognizer,
    ZeroShotRelationExtractor), on `device`."""
    path = Path(path)
    recover(path)
    raw = read_json(path / CONFIG_FILE, "knnie model config")
    task = raw.get("task") if isinstance(raw, dict) else None
    if task not in TASKS:
        raise DataError(f"unknown task {task!r}; this knnie knows {', '.join(TASKS)}", path=path / CONFIG_FILE,
                        field="task")
    return TASKS[task].from_pretrained(path, memories, device)
