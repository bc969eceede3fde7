"""Saved work is never lost or silently wrong: memory names, overwrite protection, crash
recovery, write locks, and verification of every file of a model or memory directory."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from knnie import DataError, KnnieError, Memory, RelationExtractor
from knnie.cli.main import app
from knnie.io import atomic_dir, locked
from tests.helpers import random_memory, write_lines

ROOT = Path(__file__).parents[1]
LABELS = ["born in", "works for"]
SENTENCE = {"text": "Ada Lovelace was born in London.", "head": {"start": 0, "end": 12},
            "tail": {"start": 25, "end": 31}, "label": "born in"}


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory) -> Path:
    """An untrained two-label model with one memory, saved once; tests work on copies."""
    path = tmp_path_factory.mktemp("model") / "model"
    model = RelationExtractor.new(LABELS)
    model.attach_memory("train", model.build_memory(_examples()))
    model.save_pretrained(path)
    return path


@pytest.fixture
def model_dir(saved_model, tmp_path) -> Path:
    return Path(shutil.copytree(saved_model, tmp_path / "model"))


def _examples():
    from knnie import example_from_text

    return [example_from_text(SENTENCE["text"], (0, 12, None), (25, 31, None), label) for label in LABELS]


def listing(path: Path) -> dict[str, bytes]:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


# -- 1. memory names -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../encoder", "ABSOLUTE", ".", "", "a/b", ".hidden", "x" * 65])
def test_memory_name_that_is_not_a_plain_name_is_refused_and_nothing_is_touched(model_dir, tmp_path, name):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    name = str(victim) if name == "ABSOLUTE" else name
    data = write_lines(tmp_path / "d.jsonl", SENTENCE)
    before = listing(model_dir)

    result = CliRunner().invoke(app, ["memory", "build", str(model_dir), "--data", str(data), "--name", name])

    assert result.exit_code != 0
    assert "invalid memory name" in result.output
    assert listing(model_dir) == before
    assert (victim / "keep.txt").read_text() == "mine"


def test_attach_memory_refuses_a_path_as_name(model_dir):
    model = RelationExtractor.from_pretrained(model_dir)
    with pytest.raises(KnnieError, match="invalid memory name"):
        model.attach_memory("../../x", model.memories["train"])
    assert list(model.memories) == ["train"]


# -- 2. saving over a directory ----------------------------------------------------------------
def test_save_refuses_a_directory_that_is_not_a_model_unless_overwrite(model_dir, tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "train.jsonl").write_text("precious")
    model = RelationExtractor.from_pretrained(model_dir)

    with pytest.raises(KnnieError, match=r"not a knnie model.*--overwrite"):
        model.save_pretrained(target)
    assert (target / "train.jsonl").read_text() == "precious"

    model.save_pretrained(target, overwrite=True)
    assert not (target / "train.jsonl").exists()
    assert list(RelationExtractor.from_pretrained(target).memories) == ["train"]


def test_cli_train_refuses_such_a_directory_before_training(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    data = write_lines(tmp_path / "d.jsonl", SENTENCE)

    result = CliRunner().invoke(app, ["train", "--train", str(data), "--dev", str(data), "--out", str(target)])

    assert result.exit_code == 1 and "not a knnie model" in result.output
    assert "train:" not in result.output  # refused before the data was even read
    assert (target / "notes.txt").read_text() == "mine"


def test_replacing_a_model_keeps_user_files_and_readable_memories_and_names_what_is_dropped(
        model_dir, caplog):
    (model_dir / "predictions.jsonl").write_text("mine")
    same = RelationExtractor.from_pretrained(model_dir, memories=False)
    same.save_pretrained(model_dir)  # same weights: the memory on disk is still readable, so it stays
    assert list(RelationExtractor.from_pretrained(model_dir).memories) == ["train"]

    retrained = RelationExtractor.new(LABELS)  # other weights: the old memory can no longer be read
    with caplog.at_level(logging.WARNING):
        retrained.save_pretrained(model_dir)
    assert "memories 'train' were built by the old weights and are removed" in caplog.text
    assert (model_dir / "predictions.jsonl").read_text() == "mine"
    assert not (model_dir / "memories" / "train").exists()


# -- 3. crashes and concurrent writers ------------------------------------------------------------
CRASH = """
import os, sys
from knnie import Memory
from tests.helpers import random_memory
real = os.replace
def crash(src, dst):
    real(src, dst)
    if str(dst).endswith(".old"):
        os._exit(9)  # killed between the two renames of the directory swap
os.replace = crash
random_memory(seed=5).save(sys.argv[1])
"""


def test_a_crash_between_the_two_renames_is_recovered_on_the_next_load(tmp_path):
    old = random_memory(seed=1)
    old.save(tmp_path / "mem")

    done = subprocess.run([sys.executable, "-c", CRASH, str(tmp_path / "mem")], cwd=ROOT)

    assert done.returncode == 9 and not (tmp_path / "mem").exists()  # only .mem.old is left
    loaded = Memory.load(tmp_path / "mem")
    np.testing.assert_array_equal(loaded.keys, old.keys)
    random_memory(seed=5).save(tmp_path / "mem")  # the next save cleans every leftover
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mem"]


def test_debris_of_killed_writes_is_removed_by_the_next_save(tmp_path):
    random_memory().save(tmp_path / "mem")
    (tmp_path / ".mem.abc123.tmp").mkdir()
    (tmp_path / ".mem.old").mkdir()
    random_memory(seed=2).save(tmp_path / "mem")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mem"]


def test_a_second_writer_waits_for_the_first(tmp_path):
    order = []

    def write(tag: str) -> None:
        with atomic_dir(tmp_path / "art") as tmp:
            order.append(f"{tag} start")
            (tmp / "f").write_text(tag)
            threading.Event().wait(0.3)
            order.append(f"{tag} end")

    threads = [threading.Thread(target=write, args=(t,)) for t in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert order in (["a start", "a end", "b start", "b end"], ["b start", "b end", "a start", "a end"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["art"]


def test_a_writer_that_waits_too_long_gets_a_clear_error(tmp_path):
    with locked(tmp_path / "art"), pytest.raises(KnnieError, match="being written by another knnie process"):  # noqa: SIM117
        with locked(tmp_path / "art", wait=0.2):
            pass


# -- 4. every model file is verified -----------------------------------------------------------------
def test_missing_tokenizer_file_is_an_error_naming_it(model_dir):
    (model_dir / "encoder" / "tokenizer.json").unlink()
    with pytest.raises(DataError, match=r"tokenizer\.json: file missing"):
        RelationExtractor.from_pretrained(model_dir)


@pytest.mark.parametrize("name", ["encoder/model.safetensors", "encoder/config.json", "head.safetensors"])
def test_truncated_model_file_is_an_error_naming_it(model_dir, name):
    f = model_dir / name
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(DataError, match="truncated or corrupt") as err:
        RelationExtractor.from_pretrained(model_dir)
    assert name in str(err.value)


def test_foreign_file_in_the_encoder_is_refused(model_dir):
    (model_dir / "encoder" / "vocab.txt").write_text("a\nb\n")
    with pytest.raises(DataError, match="not written with this model"):
        RelationExtractor.from_pretrained(model_dir)


def _edit_json(path: Path, **changes) -> None:
    raw = json.loads(path.read_text())
    for k, v in changes.items():
        if v is None:
            raw.pop(k)
        else:
            raw[k] = v
    path.write_text(json.dumps(raw))


def test_model_config_without_checksums_or_of_a_newer_format_is_refused(model_dir):
    config = model_dir / "knnie_config.json"
    _edit_json(config, format_version=99)
    with pytest.raises(KnnieError, match="made by a newer knnie"):
        RelationExtractor.from_pretrained(model_dir)
    _edit_json(config, format_version=2, checksums=None)
    with pytest.raises(DataError, match="no checksums"):
        RelationExtractor.from_pretrained(model_dir)


# -- 5. memories: only listed files, checksums required, versions checked ------------------------------
def test_unlisted_index_file_is_not_read(tmp_path):
    flat = random_memory(index="flat")
    flat.save(tmp_path / "flat")
    random_memory(index="hnsw", seed=9).save(tmp_path / "hnsw")
    shutil.copy(tmp_path / "hnsw" / "index.faiss", tmp_path / "flat" / "index.faiss")  # a foreign index

    loaded = Memory.load(tmp_path / "flat")
    q = flat.keys[:5].astype(np.float32)
    np.testing.assert_array_equal(loaded.search(q, 4)[1], flat.search(q, 4)[1])


def test_memory_config_without_checksums_or_of_a_newer_format_is_refused(tmp_path):
    random_memory().save(tmp_path / "mem")
    _edit_json(tmp_path / "mem" / "memory.json", checksums={})
    with pytest.raises(DataError, match="no checksums"):
        Memory.load(tmp_path / "mem")
    _edit_json(tmp_path / "mem" / "memory.json", format_version=7)
    with pytest.raises(KnnieError, match="made by a newer knnie"):
        Memory.load(tmp_path / "mem")


# -- 10. corrupt files are errors, not tracebacks ----------------------------------------------------
def test_corrupt_config_json_is_a_data_error(model_dir):
    (model_dir / "knnie_config.json").write_text('{"labels": ["a", ')
    with pytest.raises(DataError, match="malformed JSON"):
        RelationExtractor.from_pretrained(model_dir)
    (model_dir / "knnie_config.json").write_bytes(b"\xff\xfe{}")
    with pytest.raises(DataError, match="not UTF-8"):
        RelationExtractor.from_pretrained(model_dir)


def test_unreadable_weights_with_a_matching_checksum_are_a_data_error(model_dir):
    head = model_dir / "head.safetensors"
    head.write_bytes(b"not tensors at all")
    from knnie.io import file_digest

    raw = json.loads((model_dir / "knnie_config.json").read_text())
    _edit_json(model_dir / "knnie_config.json", checksums={**raw["checksums"], "head.safetensors": file_digest(head)})
    with pytest.raises(DataError, match="cannot read tensors"):
        RelationExtractor.from_pretrained(model_dir)
