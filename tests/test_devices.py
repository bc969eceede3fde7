"""Devices: one name resolved once ("auto", "cpu", "cuda", "cuda:N"), `--device` on every command
that runs the encoder, and a GPU that is asked for but missing is one clear error before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from knnie import KnnieError, RelationExtractor, example_from_text
from knnie.cli.main import app
from knnie.encoders.device import resolve_device

SAMPLE = Path(__file__).parents[1] / "data" / "sample"
runner = CliRunner()
NO_GPU = "device 'cuda' was asked for, but torch sees no CUDA GPU here"


@pytest.fixture
def no_gpu(monkeypatch):
    """This machine as one without a GPU, whatever it has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    """An untrained two-label model, saved."""
    path = tmp_path_factory.mktemp("devices") / "model"
    RelationExtractor.new(["born in", "works for"], device="cpu").save_pretrained(path)
    return path


def test_names_resolve_to_devices(no_gpu, monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")  # no GPU: the CPU
    with pytest.raises(KnnieError, match=NO_GPU):
        resolve_device("cuda")
    with pytest.raises(KnnieError, match="unknown device 'gpu'; choose one of auto, cpu, cuda"):
        resolve_device("gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(KnnieError, match="device 'cuda:2' was asked for, but torch sees 2 CUDA GPU"):
        resolve_device("cuda:2")


def test_a_model_is_loaded_and_moved_where_it_is_asked(model_dir, no_gpu):
    extractor = RelationExtractor.from_pretrained(model_dir, device="cpu")
    assert extractor.device == torch.device("cpu") and extractor.to("auto") is extractor
    with pytest.raises(KnnieError, match=NO_GPU):
        RelationExtractor.from_pretrained(model_dir, device="cuda")
    with pytest.raises(KnnieError, match=NO_GPU):
        extractor.to("cuda")
    assert extractor.device == torch.device("cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_a_gpu_gives_the_cpus_vectors(model_dir):
    examples = [example_from_text("Ada Lovelace was born in London.", (0, 12, None), (25, 31, None))] * 3
    cpu = RelationExtractor.from_pretrained(model_dir, device="cpu").encode(examples)
    gpu = RelationExtractor.from_pretrained(model_dir, device="cuda").encode(examples)
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(a, b, atol=1e-4)


def test_device_cpu_works_on_the_command_line(model_dir, tmp_path):
    data = SAMPLE / "fewrel8" / "dev.jsonl"
    lines = data.read_text().splitlines(keepends=True)
    small = tmp_path / "small.jsonl"
    small.write_text("".join(lines[:3] + lines[20:23]))
    result = runner.invoke(app, ["memory", "build", str(model_dir), "--data", str(small), "--name", "cpu",
                                 "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (model_dir / "memories" / "cpu" / "memory.json").is_file()


COMMANDS = {  # every command that runs the encoder, with arguments that would fail later if it got there
    "train": ["train", "--train", "missing.jsonl", "--dev", "missing.jsonl", "--out", "OUT"],
    "memory build": ["memory", "build", "MODEL", "--data", "missing.jsonl"],
    "tune": ["tune", "MODEL", "--dev", "missing.jsonl"],
    "evaluate": ["evaluate", "MODEL", "--data", "missing.jsonl"],
    "predict": ["predict", "MODEL", "--input", "missing.jsonl", "--output", "OUT"],
    "ner train": ["ner", "train", "--train", "missing.txt", "--dev", "missing.txt", "--out", "OUT"],
    "ner memory build": ["ner", "memory", "build", "MODEL", "--data", "missing.txt"],
    "ner tune": ["ner", "tune", "MODEL", "--dev", "missing.txt"],
    "ner evaluate": ["ner", "evaluate", "MODEL", "--data", "missing.txt"],
    "ner predict": ["ner", "predict", "MODEL", "--input", "missing.txt", "--output", "OUT"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_device_cuda_without_a_gpu_is_one_clear_error_before_any_work(command, model_dir, tmp_path, no_gpu):
    args = [{"MODEL": str(model_dir), "OUT": str(tmp_path / "out")}.get(a, a) for a in COMMANDS[command]]
    result = runner.invoke(app, [*args, "--device", "cuda"])
    assert result.exit_code == 1, result.output
    assert f"error: {NO_GPU}" in " ".join(result.output.split())
    assert not (tmp_path / "out").exists()
