"""Small builders shared by the tests (not fixtures: plain functions with explicit seeds)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from knnie import Memory

LABELS = ["a", "b", "c", "d", "e"]


def clustered(n: int, seed: int, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """n vectors around one centre per label, so a vector's neighbours tell its label."""
    centres = np.random.default_rng(0).normal(size=(len(LABELS), dim)) * 2.0
    rng = np.random.default_rng(seed)
    labels = rng.integers(len(LABELS), size=n)
    return (centres[labels] + rng.normal(size=(n, dim))).astype(np.float32), labels


def random_memory(n: int = 300, index: str = "flat", fp16: bool = False, seed: int = 1,
                  fingerprint: str = "fp-test", code_size: int = 4) -> Memory:
    """Clustered 16-d keys; an ivfpq index codes them in 2 × `code_size` parts."""
    keys, values = clustered(n, seed)
    records = [{"id": i, "label": LABELS[v]} for i, v in enumerate(values)]
    return Memory(keys, values, records, LABELS, fingerprint, index=index, fp16=fp16, code_size=code_size)


def write_lines(path: Path, *lines: dict | str) -> Path:
    """Write one line per item: dicts as JSON, strings as they are (to write broken JSON)."""
    path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines),
                    encoding="utf-8")
    return path
