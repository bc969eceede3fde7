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


def test_memory_of_another_representation_is_refused():
    memory = random_memory(fingerprint="aaaa")
    memory.check_compatible("aaaa")  # the right representation: accepted, whatever the labels
    with pytest.raises(IncompatibleArtefactError, match=r"fingerprint aaaa.*bbbb"):
        memory.check_compatible("bbbb")


def test_add_then_remove_restores_search_exactly():
    memory = random_memory(n=200)
    before = memory.search(queries(), 10)
    keys, _ = clustered(50, seed=3)
    memory.add(keys + 0.01, ["new label"] * 50, [{"id": i} for i in range(50)], source="user.jsonl")

    assert len(memory) == 250 and memory.labels[-1] == "new label" and memory.sources == ["default", "user.jsonl"]
    _, ids = memory.search(keys[:5], 1)
    assert list(memory.entry_labels(ids[:, 0])) == ["new label"] * 5  # each added key is its own nearest
    assert memory.remove("user.jsonl") == 50
    assert memory.labels == LABELS  # the label only the removed entries had is gone too
    after = memory.search(queries(), 10)
    np.testing.assert_array_equal(after[1], before[1])
    np.testing.assert_array_equal(after[0], before[0])
    with pytest.raises(KnnieError, match=r"no source .user\.jsonl."):
        memory.remove("user.jsonl")
    with pytest.raises(KnnieError, match="leave the memory empty"):
        memory.remove("default")


def test_remove_drops_the_labels_only_the_removed_entries_had():
    memory = Memory.from_labels(np.eye(4, dtype=np.float32), ["x", "y", "z", "y"], [{"i": i} for i in range(4)], "fp",
                                source="a")
    memory.add(np.eye(4, dtype=np.float32)[:2] * 2, ["w", "x"], [{"i": 4}, {"i": 5}], source="b")
    memory.remove("a")  # x stays (b has one), y and z go; the ids of x and w shift down
    assert memory.labels == ["x", "w"] and list(memory.entry_labels(np.arange(2))) == ["w", "x"]
    assert [r["i"] for r in memory.records] == [4, 5]


def test_merge_of_shards_equals_the_memory_built_at_once(tmp_path):
    keys, values = clustered(300, seed=1)
    whole = random_memory(n=300)
    shards = [Memory(keys[i : i + 100], values[i : i + 100], whole.records[i : i + 100], LABELS, "fp-test",
                     source=f"shard{i // 100}") for i in range(0, 300, 100)]
    merged = Memory.merge(shards)

    np.testing.assert_array_equal(merged.keys, whole.keys)
    assert list(merged.entry_labels(np.arange(300))) == list(whole.entry_labels(np.arange(300)))
    assert merged.sources == ["shard0", "shard1", "shard2"]
    assert_same_search(merged, whole)
    merged.save(tmp_path / "m")
    assert Memory.load(tmp_path / "m").sources == merged.sources
    with pytest.raises(IncompatibleArtefactError, match="different fingerprint"):
        Memory.merge([whole, random_memory(fingerprint="other")])


def test_labels_are_joined_by_name_when_merging():
    a = Memory.from_labels(np.eye(3, dtype=np.float32), ["x", "y", "x"], [{}] * 3, "fp")
    b = Memory.from_labels(np.eye(3, dtype=np.float32)[::-1], ["z", "x", "z"], [{}] * 3, "fp")
    merged = Memory.merge([a, b])
    assert merged.labels == ["x", "y", "z"]
    assert list(merged.entry_labels(np.arange(6))) == ["x", "y", "x", "z", "x", "z"]


@pytest.mark.parametrize("index", ["flat", "hnsw"])
def test_cosine_and_l2_memories_agree_on_normalised_keys(index):
    keys, values = clustered(300, seed=1)
    keys /= np.linalg.norm(keys, axis=1, keepdims=True)
    q = queries() / np.linalg.norm(queries(), axis=1, keepdims=True)
    l2 = Memory(keys, values, [{}] * 300, LABELS, "fp", index=index)
    cosine = Memory(keys * 3.0, values, [{}] * 300, LABELS, "fp", index=index, metric="cosine")  # scale is ignored

    (d_l2, i_l2), (d_cos, i_cos) = l2.search(q, 8), cosine.search(q * 0.5, 8)
    np.testing.assert_array_equal(i_l2, i_cos)
    np.testing.assert_allclose(d_l2, d_cos, atol=1e-5)


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


@pytest.mark.parametrize("target", ["faiss.write_index", "knnie.io.SafetensorsWriter.write"])
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
