"""Shared fixtures: the shipped FewRel sample and ONE relation extractor trained on it.

Training takes about a minute and a half on 2 CPU cores, so the model is session-scoped:
every test that needs a trained model shares it (and must not change its weights).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from knnie import EntityRecognizer, RelationExample, RelationExtractor, TrainConfig, read_relations, read_tagged, train

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "fewrel8"
# modules whose tests train models or run whole workflows; `pytest -m "not slow"` leaves them out
SLOW_MODULES = {"test_cli", "test_ner_workflow", "test_bench_smoke", "test_foundation"}
# fixtures that train a model: a test using one, directly or through another fixture, is slow
TRAINING_FIXTURES = {"trained", "trained_zs"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark as slow every test that trains: those of SLOW_MODULES and those using a trained model."""
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in SLOW_MODULES or TRAINING_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)


@dataclass
class Sample:
    train: list[RelationExample]
    dev: list[RelationExample]
    test: list[RelationExample]

    @property
    def labels(self) -> list[str]:
        return sorted({ex.label for ex in self.train + self.dev})


@dataclass
class Trained:
    """The trained extractor with the 'train' memory attached and tuned on dev."""

    extractor: RelationExtractor
    tune_report: dict


@pytest.fixture(scope="module")
def ray() -> Iterator[Any]:
    """A local Ray instance of 2 CPUs for a module's --ray tests (each start costs seconds)."""
    from knnie.cluster import ray_session

    with ray_session(num_cpus=2) as session:
        yield session


@pytest.fixture(scope="session")
def sample() -> Sample:
    return Sample(*(read_relations(SAMPLE / f"{split}.jsonl") for split in ("train", "dev", "test")))


@pytest.fixture(scope="session")
def trained(sample: Sample) -> Trained:
    extractor = RelationExtractor.new(sample.labels)
    train(extractor, sample.train, sample.dev, TrainConfig(epochs=2, lr=1e-4))
    extractor.attach_memory("train", extractor.build_memory(sample.train))
    return Trained(extractor, extractor.tune(sample.dev))


@pytest.fixture(scope="session")
def served_dirs(sample: Sample, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two small saved models for the service's tests, no training: a headless NER model with a memory
    of the 120 sample sentences (tuned on 40 dev sentences) and a headless relation model with a
    memory of 40 sample examples. Tests that write to them work on copies."""
    root = tmp_path_factory.mktemp("served")
    ner = EntityRecognizer.headless(max_length=128, device="cpu")
    ner.attach_memory("train", ner.build_memory(read_tagged(SAMPLE.parent / "ner" / "train.txt"), source="train"))
    ner.tune(read_tagged(SAMPLE.parent / "ner" / "dev.txt")[:40])
    ner.save_pretrained(root / "ner")
    extractor = RelationExtractor.headless(max_length=128, device="cpu")
    extractor.attach_memory("train", extractor.build_memory(sample.train[::10], source="train"))
    extractor.save_pretrained(root / "re")
    return {"ner": root / "ner", "re": root / "re"}
