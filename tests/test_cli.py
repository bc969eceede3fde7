"""The CLI workflow on the shipped sample: train → memory build → tune → evaluate → predict,
and the errors a user sees on bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from knnie.cli.main import app

SAMPLE = Path(__file__).parents[1] / "data" / "sample"
runner = CliRunner()


def knnie(*args: str, ok: bool = True):
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def head_lines(src: Path, dst: Path, n: int) -> Path:
    dst.write_text("".join(src.read_text().splitlines(keepends=True)[:n]))
    return dst


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("cli")
    head_lines(SAMPLE / "fewrel8" / "train.jsonl", d / "train.jsonl", 160)
    head_lines(SAMPLE / "fewrel8" / "dev.jsonl", d / "dev.jsonl", 64)
    return d


@pytest.fixture(scope="module")
def model(workdir: Path) -> Path:
    out = workdir / "model"
    knnie("train", "--train", workdir / "train.jsonl", "--dev", workdir / "dev.jsonl", "--out", out,
          "--epochs", "1", "--lr", "1e-4")
    knnie("memory", "build", out, "--data", workdir / "train.jsonl", "--name", "train")
    return out


def test_workflow(model: Path, workdir: Path) -> None:
    assert (model / "memories" / "train" / "memory.json").is_file()
    knnie("tune", model, "--dev", workdir / "dev.jsonl")
    config = json.loads((model / "knnie_config.json").read_text())
    assert set(config["knn"]["train"]) == {"k", "temperature", "lam", "kernel", "depth"}
    assert config["knn"]["train"]["depth"] is None  # a small memory is flat: exact, no search depth
    assert config["knn_only"]["train"]["lam"] == 1.0

    report_path = workdir / "report.json"
    result = knnie("evaluate", model, "--data", SAMPLE / "fewrel8" / "test.jsonl", "--output", report_path)
    assert "kNN-RE" in result.output
    report = json.loads(report_path.read_text())
    assert set(report) == {"vanilla", "knn", "knn_re"}
    assert len(report["vanilla"]["per_relation"]) == 8

    out = workdir / "predictions.jsonl"
    knnie("predict", model, "--input", SAMPLE / "sentences.jsonl", "--output", out, "--neighbours", "3")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6
    for row in rows:
        assert row["prediction"] in config["labels"]
        assert 0.0 < row["probability"] <= 1.0
        assert len(row["neighbours"]) == 3
        distances = [n["distance"] for n in row["neighbours"]]
        assert distances == sorted(distances)


def test_malformed_input_names_file_and_line(model: Path, workdir: Path) -> None:
    bad = workdir / "bad.jsonl"
    bad.write_text('{"text": "a b", "head": {"start": 0, "end": 1}, "tail": {"start": 2, "end": 3}}\n{"text": oops}\n')
    result = knnie("predict", model, "--input", bad, "--output", workdir / "p.jsonl", ok=False)
    assert result.exit_code == 1
    assert "bad.jsonl:2" in result.output and "malformed JSON" in result.output
    assert not (workdir / "p.jsonl").exists()


def test_failed_train_leaves_saved_model_untouched(model: Path, workdir: Path) -> None:
    before = (model / "knnie_config.json").read_bytes()
    bad_dev = workdir / "bad_dev.jsonl"
    bad_dev.write_text('{"text": "a b", "head": {"start": 0, "end": 9}, "tail": {"start": 2, "end": 3}}\n')
    result = knnie("train", "--train", workdir / "train.jsonl", "--dev", bad_dev, "--out", model, ok=False)
    assert result.exit_code == 1
    assert "bad_dev.jsonl:1" in result.output and "'head'" in result.output and "out of range" in result.output
    assert (model / "knnie_config.json").read_bytes() == before


def test_memory_from_another_model_is_refused(model: Path, workdir: Path) -> None:
    other = workdir / "other"
    tiny = head_lines(workdir / "train.jsonl", workdir / "tiny.jsonl", 16)
    knnie("train", "--train", tiny, "--dev", tiny, "--out", other, "--epochs", "1", "--seed", "7")
    shutil.copytree(model / "memories" / "train", other / "memories" / "train")
    result = knnie("tune", other, "--dev", workdir / "dev.jsonl", ok=False)
    assert result.exit_code == 1
    assert "fingerprint" in result.output and "Rebuild" in result.output


def test_train_seed_decides_the_whole_run(workdir: Path) -> None:
    """Two runs with one --seed in one process give the same weights, whatever ran before them
    (the new head and marker embeddings are drawn after seeding)."""
    small = head_lines(workdir / "train.jsonl", workdir / "small.jsonl", 32)
    heads = []
    for run in ("a", "b"):
        knnie("train", "--train", small, "--dev", workdir / "dev.jsonl", "--out", workdir / f"seeded-{run}",
              "--epochs", "1", "--seed", "7")
        heads.append((workdir / f"seeded-{run}" / "head.safetensors").read_bytes())
        torch.rand(3)  # what ran between the two runs must not matter
    assert heads[0] == heads[1]
