"""Memories beyond one process's RAM: sharded and Ray builds give the memory a one-process build
gives; IVF-PQ, memory-mapped loading and lazy records give the answers of the in-RAM memory; a
build that fails or is interrupted loses nothing."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import knnie.memory.build as build
import knnie.memory.memory as memory_module
from knnie import DataError, KnnieError, Memory, RelationExtractor, read_relations
from knnie.cli.main import app
from knnie.cluster import map_in_order
from knnie.data.files import split_file
from knnie.memory.memory import reindex
from tests.conftest import SAMPLE
from tests.helpers import clustered, random_memory, write_lines

TRAIN = SAMPLE / "train.jsonl"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained extractor saved with the memory a one-process build gives ('reference')."""
    path = tmp_path_factory.mktemp("scale") / "model"
    examples = read_relations(TRAIN)
    extractor = RelationExtractor.new(sorted({ex.label for ex in examples}), device="cpu")
    extractor.save_pretrained(path)
    extractor.attach_memory("reference", extractor.build_memory(examples, source=TRAIN.name))
    extractor.save_memory(path, "reference")
    return path


def assert_same_memory(got: Memory, want: Memory) -> None:
    """Same keys up to float rounding (batches are cut differently), same values, labels, sources
    and records in the same order."""
    np.testing.assert_allclose(np.asarray(got.keys, np.float32), want.keys, atol=1e-4)
    assert np.array_equal(got.values, want.values) and got.labels == want.labels
    assert got.sources == want.sources and list(got.records) == list(want.records)


def test_ray_build_on_two_cpus_equals_the_one_process_build(model_dir: Path, ray: Any) -> None:
    config = build.build_sharded(model_dir, [TRAIN], "ray", shards=3, use_ray=True, workers=2)
    assert config.size == 400 and not (model_dir / "memories" / ".ray.build").exists()  # shards cleaned up
    want = Memory.load(model_dir / "memories" / "reference")
    assert_same_memory(Memory.load(model_dir / "memories" / "ray"), want)


def test_a_worker_error_names_the_file_and_line(model_dir: Path, ray: Any, tmp_path: Path) -> None:
    lines = TRAIN.read_text().splitlines()
    bad = write_lines(tmp_path / "bad.jsonl", *lines[:150], '{"text": "broken', *lines[150:200])
    with pytest.raises(DataError, match=r"bad\.jsonl:151: malformed JSON"):
        build.build_sharded(model_dir, [bad], "bad", shards=4, use_ray=True, workers=2)
    assert not (model_dir / "memories" / "bad").exists()


class Dying:
    """A worker whose process dies on item 2, as a worker killed by the OOM killer would."""

    def __call__(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        if item["i"] == 2:
            os._exit(1)
        return [item]


def test_a_worker_that_dies_ends_the_build_with_a_clear_error(ray: Any) -> None:
    with pytest.raises(KnnieError, match=r"the build failed on Ray .*ActorDiedError.*; shards kept"):
        list(map_in_order(ray, [{"i": i} for i in range(4)], Dying, (), 2, "shards kept"))


def test_sharded_ner_build_equals_the_one_process_build(tmp_path: Path) -> None:
    from knnie import EntityRecognizer, read_tagged

    data = SAMPLE.parent / "ner" / "train.txt"
    ner = EntityRecognizer.headless(max_length=128, device="cpu")
    ner.save_pretrained(tmp_path / "ner")
    build.build_sharded(tmp_path / "ner", [data], "words", shards=5)
    assert len(split_file(data, 24, blocks=True)) == 5  # 120 sentences cut at blank lines
    assert_same_memory(Memory.load(tmp_path / "ner" / "memories" / "words"),
                       ner.build_memory(read_tagged(data), source=data.name))


def test_parts_read_the_file_s_own_line_numbers(tmp_path: Path) -> None:
    lines = TRAIN.read_text().splitlines()[:9]
    data = write_lines(tmp_path / "d.jsonl", *lines[:4], "", *lines[4:])  # a blank line 5
    parts = split_file(data, 3)
    assert [p.first_line for p in parts] == [1, 4, 8]
    assert [ex for p in parts for ex in read_relations(p)] == read_relations(data)
    broken = write_lines(tmp_path / "e.jsonl", *lines[:7], "{oops", *lines[7:])
    with pytest.raises(DataError, match=r"e\.jsonl:8: malformed JSON"):
        read_relations(split_file(broken, 3)[2])


def test_interrupted_build_leaves_the_previous_memory_and_resumes(model_dir: Path, monkeypatch) -> None:
    build.build_sharded(model_dir, [TRAIN], "resumed", shards=2)  # the previous memory
    before = Memory.load(model_dir / "memories" / "resumed")
    examples = read_relations(TRAIN)[:250]
    data = write_lines(model_dir.parent / "more.jsonl", *(ex.to_record() for ex in examples))
    written = []
    real = build.write_shard

    def dies_on_the_third(root: Path, *args: Any) -> None:
        if len(written) == 2:
            raise KeyboardInterrupt  # killed after two shards
        written.append(root.name)
        real(root, *args)

    monkeypatch.setattr(build, "write_shard", dies_on_the_third)
    with pytest.raises(KeyboardInterrupt):
        build.build_sharded(model_dir, [data], "resumed", shards=5)
    assert_same_memory(Memory.load(model_dir / "memories" / "resumed"), before)  # intact
    work = model_dir / "memories" / ".resumed.build"
    assert sorted(p.name for p in work.iterdir() if p.is_dir()) == written == ["000000", "000001"]

    shard = work / "000001" / "keys.safetensors"  # a shard damaged on disk is encoded again
    shard.write_bytes(shard.read_bytes()[:100])
    with pytest.raises(DataError, match=r"000001/keys\.safetensors: file is truncated or corrupt"):
        build.read_shard(work / "000001")
    monkeypatch.setattr(build, "write_shard", lambda root, *a: (written.append(root.name), real(root, *a)))
    build.build_sharded(model_dir, [data], "resumed", shards=5)
    assert written[2:] == ["000001", "000002", "000003", "000004"]  # shard 0 was kept
    extractor = RelationExtractor.from_pretrained(model_dir, memories=False, device="cpu")
    assert_same_memory(Memory.load(model_dir / "memories" / "resumed"),
                       extractor.build_memory(examples, source="more.jsonl"))


def test_cli_builds_in_shards_from_a_glob_and_refuses_an_unreachable_cluster(model_dir: Path) -> None:
    run = CliRunner().invoke(app, ["memory", "build", str(model_dir), "--data", str(SAMPLE / "*.jsonl"), "--name",
                                   "glob", "--index", "ivfpq", "--code-size", "16"])
    assert run.exit_code == 0, run.output
    assert "720 keys of dim 768 (ivfpq)" in " ".join(run.output.split())  # train + dev + test
    run = CliRunner().invoke(app, ["memory", "build", str(model_dir), "--data", str(TRAIN), "--name", "far",
                                   "--ray-address", "127.0.0.1:9"])
    assert run.exit_code == 1 and "cannot reach the Ray cluster at 127.0.0.1:9" in " ".join(run.output.split())
    assert not (model_dir / "memories" / "far").exists()


# -- IVF-PQ, memory-mapped loading, lazy records --------------------------------------------------
def test_ivfpq_round_trips_and_reranking_recovers_exact_neighbours(tmp_path: Path) -> None:
    memory = random_memory(n=3000, index="ivfpq", code_size=4)  # 8 codes of 4 bits for 16-d keys
    memory.set_search(nprobe=64, rerank=300)  # every list: only quantisation can lose neighbours
    queries = clustered(50, seed=7)[0]
    exact = memory.search(queries, 10, exact=True)
    found = memory.search(queries, 10)
    memory.save(tmp_path / "pq")
    loaded = Memory.load(tmp_path / "pq")
    assert loaded.config.index == "ivfpq" and loaded.config.code_size == 4
    for a, b in zip(loaded.search(queries, 10), found):
        np.testing.assert_array_equal(a, b)
    assert np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found[1], exact[1])]) >= 0.99
    np.testing.assert_allclose(found[0], exact[0], rtol=1e-5)  # re-ranked distances are exact ones
    loaded.set_search(rerank=0)  # codes alone: approximate distances
    assert not np.allclose(loaded.search(queries, 10)[0], exact[0], rtol=1e-3)


def test_merged_ivfpq_memories_keep_their_code_size_and_reranking() -> None:
    a, b = random_memory(n=200, index="ivfpq", code_size=2), random_memory(n=100, index="ivfpq", seed=2, code_size=2)
    a.set_search(rerank=16)
    merged = Memory.merge([a, b])
    assert (merged.config.index, merged.config.code_size, merged.config.rerank, len(merged)) == ("ivfpq", 2, 16, 300)


def test_ivfpq_refuses_a_code_size_that_does_not_divide_the_keys() -> None:
    with pytest.raises(KnnieError, match=r"code size 3 does not fit 16-d keys.*choose one of \[8\]"):
        Memory(*clustered(10, 1)[:1], np.zeros(10, np.int64), [{}] * 10, ["a"], "fp", index="ivfpq", code_size=3)


@pytest.mark.parametrize("index", ["flat", "ivf", "ivfpq"])
def test_mmap_load_gives_the_neighbours_of_an_in_ram_load(tmp_path: Path, index: str) -> None:
    memory = random_memory(n=2000, index=index, fp16=True)
    memory.save(tmp_path / "m")
    in_ram, mapped = Memory.load(tmp_path / "m", mmap=False), Memory.load(tmp_path / "m", mmap=True)
    assert mapped.in_ram is False and in_ram.in_ram is True
    queries = clustered(30, seed=3)[0]
    for a, b in zip(in_ram.search(queries, 8), mapped.search(queries, 8)):
        np.testing.assert_array_equal(a, b)
    ids = mapped.search(queries, 8)[1]
    assert [mapped.records[i] for i in ids[0]] == [memory.records[i] for i in ids[0]]  # lazy records


def test_lazy_records_read_the_right_line_and_only_the_loaded_file(tmp_path: Path) -> None:
    memory = random_memory(n=500)
    memory.save(tmp_path / "m")
    loaded = Memory.load(tmp_path / "m")
    assert loaded.records[0] == {"id": 0, "label": memory.records[0]["label"]}
    assert loaded.records[-1]["id"] == 499 and loaded.records[123]["id"] == 123
    assert [r["id"] for r in loaded.records[10:13]] == [10, 11, 12]
    random_memory(n=20, seed=9).save(tmp_path / "m")  # replaced on disk: the loaded memory keeps its file
    assert loaded.records[400]["id"] == 400


def test_a_loaded_memory_grows_and_is_saved_again(tmp_path: Path) -> None:
    random_memory(n=100).save(tmp_path / "m")
    loaded = Memory.load(tmp_path / "m")
    keys = clustered(3, seed=5)[0]
    loaded.add(keys, ["a", "b", "z"], [{"id": "new"}] * 3, source="more")
    loaded.save(tmp_path / "m")
    again = Memory.load(tmp_path / "m")
    assert len(again) == 103 and again.records[102] == {"id": "new"} and again.records[0]["id"] == 0


def test_format_2_memories_are_still_read(tmp_path: Path) -> None:
    """A memory saved before records were indexed: its offsets are computed on load."""
    import json

    memory = random_memory(n=50)
    memory.save(tmp_path / "m")
    arrays = memory_module.read_safetensors(tmp_path / "m" / "keys.safetensors")
    from safetensors.numpy import save_file

    save_file({k: v for k, v in arrays.items() if k != "offsets"}, str(tmp_path / "m" / "keys.safetensors"))
    config = json.loads((tmp_path / "m" / "memory.json").read_text())
    config.update(format_version=2, sizes={}, checksums={**config["checksums"], "keys.safetensors":
                  memory_module.file_digest(tmp_path / "m" / "keys.safetensors")})
    for key in ("code_size", "rerank"):
        config.pop(key)
    (tmp_path / "m" / "memory.json").write_text(json.dumps(config))
    loaded = Memory.load(tmp_path / "m", mmap=True)
    assert loaded.records[49] == memory.records[49]


def test_a_memory_larger_than_free_ram_is_refused_without_mmap(tmp_path: Path, monkeypatch) -> None:
    random_memory(n=1000).save(tmp_path / "m")
    monkeypatch.setattr(memory_module, "available_ram", lambda: 10_000)
    with pytest.raises(KnnieError, match=r"needs 0\.0 GiB of RAM.*open it memory-mapped"):
        Memory.load(tmp_path / "m", mmap=False)
    assert len(Memory.load(tmp_path / "m", mmap=True)) == 1000


def test_a_truncated_keys_file_is_reported_on_a_mapped_load(tmp_path: Path) -> None:
    random_memory(n=1000).save(tmp_path / "m")
    keys = tmp_path / "m" / "keys.safetensors"
    keys.write_bytes(keys.read_bytes()[:-64])
    with pytest.raises(DataError, match=r"keys\.safetensors: file is truncated or corrupt"):
        Memory.load(tmp_path / "m", mmap=True)


def test_reindex_links_the_keys_and_searches_like_a_memory_built_with_that_index(tmp_path: Path) -> None:
    random_memory(n=2000).save(tmp_path / "flat")
    reindex(tmp_path / "flat", tmp_path / "ivf", "ivf")
    inode = [(tmp_path / m / "keys.safetensors").stat().st_ino for m in ("ivf", "flat")]
    assert inode[0] == inode[1]
    direct = random_memory(n=2000, index="ivf")
    queries = clustered(30, seed=3)[0]
    for a, b in zip(Memory.load(tmp_path / "ivf").search(queries, 8), direct.search(queries, 8)):
        np.testing.assert_array_equal(a, b)
