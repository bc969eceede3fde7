"""Memory persistence and the checks that keep a wrong or damaged memory out."""

from __future__ import annotations

import numpy as np
import pytest

from knnie import DataError, IncompatibleArtefactError, KnnieError, Memory
from tests.helpers import LABELS, clustered, random_memory


def queries() -> np.ndarray:
    return clustered(40, seed=7)[0]


def assert_same_search(a: Memory, b: Memory, k: int = 10) -> None:
    da, ia = a.search(queries(), k)
    db, ib = b.search(queries(), k)
    assert np.array_equal(ia, ib)
    assert np.array_equal(da, db)


@pytest.mark.parametrize("fp16", [False, True], ids=["fp32", "fp16"])
@pytest.mark.parametrize("index", ["flat", "ivf", "hnsw"])
def test_save_load_round_trip_gives_identical_search(tmp_path, index, fp16):
    memory = random_memory(index=index, fp16=fp16)
    memory.save(tmp_path / "mem")
    loaded = Memory.load(tmp_path / "mem")

    assert (tmp_path / "mem" / "index.faiss").is_file() == (index != "flat")
    assert loaded.config.index == index and loaded.config.fp16 == fp16
    assert loaded.keys.dtype == (np.float16 if fp16 else np.float32)
    assert loaded.labels == LABELS and loaded.records == memory.records
    assert np.array_equal(loaded.values, memory.values)
    assert_same_search(memory, loaded)


def test_search_returns_nearest_first_and_caps_k_at_the_memory_size():
    memory = random_memory(n=20)
    dist, ids = memory.search(queries(), k=50)
    assert dist.shape == ids.shape == (40, 20)
    assert np.all(np.diff(dist, axis=1) >= 0)
    q = queries()[0]
    np.testing.assert_allclose(dist[0], np.sort(((memory.keys - q) ** 2).sum(axis=1)), rtol=1e-4)


def test_queries_of_the_wrong_dimension_are_refused():
    with pytest.raises(KnnieError, match="16-d keys"):
        random_memory().search(np.zeros((2, 8), np.float32), 3)


def test_memory_of_another_model_is_refused():
    memory = random_memory(fingerprint="aaaa")
    memory.check_compatible("aaaa", LABELS)  # the right model: accepted
    with pytest.raises(IncompatibleArtefactError, match=r"fingerprint aaaa.*bbbb"):
        memory.check_compatible("bbbb", LABELS)


def test_memory_with_other_labels_is_refused():
    memory = random_memory(fingerprint="aaaa")
    with pytest.raises(IncompatibleArtefactError, match="label sets differ"):
        memory.check_compatible("aaaa", LABELS[::-1])  # same names, another order: ids would mean other labels
    with pytest.raises(IncompatibleArtefactError, match="label sets differ"):
        memory.check_compatible("aaaa", LABELS[:-1])


@pytest.mark.parametrize(("index", "name"), [("flat", "keys.safetensors"), ("ivf", "keys.safetensors"),
                                             ("ivf", "index.faiss"), ("flat", "records.jsonl")])
def test_truncated_file_is_reported(tmp_path, index, name):
    random_memory(index=index).save(tmp_path / "mem")
    damaged = tmp_path / "mem" / name
    damaged.write_bytes(damaged.read_bytes()[: damaged.stat().st_size // 2])

    with pytest.raises(DataError, match="truncated or corrupt") as err:
        Memory.load(tmp_path / "mem")
    assert name in str(err.value)


def test_missing_memory_directory_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="not found"):
        Memory.load(tmp_path / "nowhere")


def test_empty_memory_is_refused():
    with pytest.raises(KnnieError, match="empty memory"):
        Memory(np.zeros((0, 16), np.float32), np.zeros(0, np.int64), [], LABELS, "fp")


@pytest.mark.parametrize("target", ["faiss.write_index", "safetensors.numpy.save_file"])
def test_failed_save_leaves_the_old_memory_intact(tmp_path, monkeypatch, target):
    old = random_memory(seed=1)
    old.save(tmp_path / "mem")
    new = random_memory(index="ivf", seed=5)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(target, fail)
    with pytest.raises(OSError, match="disk full"):
        new.save(tmp_path / "mem")
    monkeypatch.undo()

    assert [p.name for p in tmp_path.iterdir()] == ["mem"]  # no half-written leftovers
    reloaded = Memory.load(tmp_path / "mem")
    assert reloaded.config.index == "flat"
    assert_same_search(old, reloaded)
