"""Approximate search: the index picked by memory size, search depths, and their tuning on dev
against the exact search; settings that make an approximate index exact give exact results."""

from __future__ import annotations

import random

import numpy as np
import pytest

from knnie import Memory
from knnie.data.schema import TaggedSentence
from knnie.memory import memory as memory_module
from knnie.memory.tuner import DEPTH_TOLERANCE, GridResult, KnnParams, choose_depth
from tests.helpers import LABELS, clustered
from tests.test_ner_unit import recognizer


def memory_of(n: int, index: str = "auto", dim: int = 16, seed: int = 1) -> Memory:
    keys, values = clustered(n, seed, dim)
    return Memory(keys, values, [{"id": i} for i in range(n)], LABELS, "fp-test", index=index)


def brute_force(memory: Memory, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    d = ((queries[:, None, :] - memory.keys[None].astype(np.float32)) ** 2).sum(-1)
    ids = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, ids, 1), ids


@pytest.mark.parametrize("size,kind", [(500, "flat"), (50_000, "flat"), (50_001, "hnsw"), (500_001, "ivf")])
def test_auto_picks_the_index_by_memory_size(size, kind):
    assert memory_module.auto_index(size) == kind


def test_auto_memory_records_the_kind_it_picked():
    assert memory_of(300).config.index == "flat"
    assert Memory(np.zeros((3, 4)), np.zeros(3), [{}] * 3, LABELS, "fp", index="ivf").config.index == "ivf"


def test_ivf_probing_every_list_is_exact_search():
    memory = memory_of(3000, "ivf")
    queries = clustered(200, seed=5)[0]
    nlist = memory.depths(10)[-1]
    dist, ids = memory.search(queries, 10, depth=nlist)
    ref_dist, ref_ids = brute_force(memory, queries, 10)
    assert nlist == memory.index.nlist > 1
    assert np.array_equal(ids, ref_ids)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_exact_search_of_an_approximate_memory_is_brute_force(index):
    memory = memory_of(3000, index)
    queries = clustered(100, seed=6)[0]
    dist, ids = memory.search(queries, 16, exact=True)
    ref_dist, ref_ids = brute_force(memory, queries, 16)
    assert np.array_equal(ids, ref_ids)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-4, atol=1e-4)


def test_depth_trades_recall_for_speed_without_changing_the_memory_setting():
    memory = memory_of(3000, "ivf", dim=32)
    queries = clustered(300, seed=7, dim=32)[0]
    _, exact_ids = memory.search(queries, 16, exact=True)
    recall = {d: np.mean([len(set(a) & set(b)) / 16 for a, b in zip(memory.search(queries, 16, depth=d)[1], exact_ids)])
              for d in (1, memory.depths(16)[-1])}
    assert recall[1] < 0.9 and recall[memory.depths(16)[-1]] == 1.0
    assert memory.config.nprobe == 16 and memory.index.nprobe == 16


def test_grouping_many_queries_by_region_leaves_every_result_unchanged(monkeypatch):
    memory = memory_of(3000, "hnsw")
    queries = clustered(600, seed=8)[0]
    alone = [memory.search(queries[i : i + 1], 8, depth=12) for i in range(len(queries))]
    monkeypatch.setattr(memory_module, "LOCALITY_MIN", 100)
    dist, ids = memory.search(queries, 8, depth=12)
    assert memory._cells is not None  # the grouping did run
    assert np.array_equal(ids, np.concatenate([a[1] for a in alone]))
    assert np.array_equal(dist, np.concatenate([a[0] for a in alone]))


def test_choose_depth_takes_the_cheapest_depth_within_tolerance_and_reports_those_tried():
    scores = {1: 0.70, 2: 0.79, 4: 0.7996, 8: 0.81}
    depth, tried = choose_depth([1, 2, 4, 8], scores.__getitem__, exact=0.80)
    assert depth == 4 and tried == {1: 0.70, 2: 0.79, 4: 0.7996}
    assert choose_depth([1, 2], scores.__getitem__, exact=0.90) == (2, {1: 0.70, 2: 0.79})  # none: the deepest


def test_grid_choice_with_tolerance_prefers_the_smallest_k_close_to_the_best():
    scores = np.zeros((1, 3, 1, 2))
    scores[0, :, 0, 1] = [0.70, 0.8996, 0.90]  # k = 2, 4, 8 at λ = 0.5
    grid = GridResult(scores, ("plain",), (2, 4, 8), [[[1.0]] * 3], (0.0, 0.5))
    assert grid.choose() == (KnnParams(8, 1.0, 0.5, "plain"), 0.90) and grid.best == KnnParams(8, 1.0, 0.5, "plain")
    assert grid.choose(tolerance=DEPTH_TOLERANCE) == (KnnParams(4, 1.0, 0.5, "plain"), 0.8996)
    assert grid.choose(max_k=2) == (KnnParams(2, 1.0, 0.5, "plain"), 0.70)


def sentences(n: int, seed: int) -> list[TaggedSentence]:
    """Random lowercase words; words starting with a-e are locations, with z persons."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 7)))
                 for _ in range(rng.randint(4, 12))]
        tags = ["B-LOC" if w[0] in "abcde" else "B-PER" if w[0] == "z" else "O" for w in words]
        out.append(TaggedSentence(words, tags, " ".join(words)))
    return out


def test_tuning_an_approximate_memory_keeps_dev_within_tolerance_and_all_lists_give_exact_predictions():
    train, dev = sentences(300, 1), sentences(60, 2)
    flat, ivf = recognizer(), recognizer()
    ivf.model.load_state_dict(flat.model.state_dict())
    flat.attach_memory("train", flat.build_memory(train, index="flat"))
    exact = flat.memories["train"]
    ivf.attach_memory("train", Memory(exact.keys, exact.values, exact.records, exact.labels, flat.fingerprint,
                                      index="ivf"))
    exact_report, report = flat.tune(dev), ivf.tune(dev)

    search = report["memories"]["train"]["search"]
    assert "search" not in exact_report["memories"]["train"]
    assert search["index"] == "ivf" and search["depth"] in search["tried"]
    assert search["tried"][search["depth"]] >= report["memories"]["train"]["dev_f1"] - DEPTH_TOLERANCE
    assert report["memories"]["train"]["dev_f1"] >= exact_report["memories"]["train"]["dev_f1"] - DEPTH_TOLERANCE
    assert ivf.params("train").depth == ivf.params("train", knn_only=True).depth == search["depth"]
    assert ivf.params("train", knn_only=True).k <= ivf.params("train").k == search["k"]  # no deeper search for kNN-only
    # prediction searches at the tuned depth: its dev score is the one the tuner saw
    assert ivf.evaluate(dev)["knn_ner"]["f1"] == pytest.approx(search["tried"][search["depth"]])
    # with every list probed and the exact memory's settings, predictions are the exact ones
    nlist = ivf.memories["train"].index.nlist
    ivf.config.knn["train"] = {**flat.config.knn["train"], "depth": nlist}
    ivf.config.knn_only["train"] = {**flat.config.knn_only["train"], "depth": nlist}
    assert ivf.predict_tags(dev) == flat.predict_tags(dev)


def duplicated_memory(index: str, seed: int = 3) -> Memory:
    """3,000 distinct keys, half of them stored two or three times with the same label."""
    rng = np.random.default_rng(seed)
    base, labels = clustered(3000, seed)
    copies = rng.integers(0, 3000, 2500)
    keys = np.concatenate([base, base[copies]])
    values = np.concatenate([labels, labels[copies]])
    return Memory(keys, values, [{"id": i} for i in range(len(keys))], LABELS, "fp-test", index=index)


@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_approximate_indexes_hold_each_distinct_key_once(index):
    memory = duplicated_memory(index)
    members, starts, counts = memory.groups
    assert memory.index.ntotal == len(starts) == len(np.unique(memory.keys, axis=0)) < len(memory)
    assert sorted(members) == list(range(len(memory))) and counts.sum() == len(memory)


def test_searching_distinct_keys_gives_every_copy_as_exact_search_does():
    """IVF probing every list over the distinct keys, copies put back, is the exact search."""
    memory = duplicated_memory("ivf")
    queries = clustered(300, seed=9)[0]
    k = 12
    exact_dist, exact_ids = memory.search(queries, k + 1, exact=True)
    dist, ids = memory.search(queries, k, depth=memory.depths(k)[-1])
    np.testing.assert_allclose(dist, exact_dist[:, :k], rtol=1e-4, atol=1e-4)
    clear = exact_dist[:, k - 1] < exact_dist[:, k] - 1e-3  # rows whose k-th key is not tied with the next
    assert clear.mean() > 0.3
    assert all(set(a) == set(b) for a, b in zip(ids[clear], exact_ids[clear, :k]))
    assert np.array_equal(memory.values[ids], memory.values[exact_ids[:, :k]])  # copies share labels


def test_an_index_saved_over_all_keys_is_still_read_right():
    """Indexes written before keys were grouped hold every key: their ids are key ids."""
    import faiss

    memory = duplicated_memory("hnsw")
    old = faiss.IndexHNSWFlat(memory.config.dim, 32)
    old.add(memory.keys)
    memory._index = old
    queries = clustered(50, seed=10)[0]
    dist, ids = memory.search(queries, 5, depth=256)
    exact_dist, _ = memory.search(queries, 5, exact=True)
    np.testing.assert_allclose(dist, exact_dist, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dist, ((queries[:, None] - memory.keys[ids]) ** 2).sum(-1), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_a_grouped_memory_survives_save_and_load(tmp_path, index):
    memory = duplicated_memory(index)
    queries = clustered(40, seed=11)[0]
    before = memory.search(queries, 10, depth=32)
    memory.save(tmp_path / "m")
    after = Memory.load(tmp_path / "m").search(queries, 10, depth=32)
    assert np.array_equal(before[1], after[1]) and np.array_equal(before[0], after[0])
