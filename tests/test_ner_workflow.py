"""kNN-NER end to end on the shipped English sample: the CLI workflow with MiniLM, save →
load → same spans, and the char-BiLSTM encoder with its memory."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from knnie import EntityRecognizer, TrainConfig, read_tagged, train_ner
from knnie.cli.main import app
from knnie.tasks.ner import tag_set

SAMPLE = Path(__file__).parents[1] / "data" / "sample" / "ner"
MARGIN = 0.3  # entity F1 to reach on test; predicting all O scores 0
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread for this module only (it trains several models; on 2 shared cores one thread
    is several times faster than two), restored afterwards so other modules keep their own setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def knnie(*args, ok: bool = True):
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ner") / "model"
    knnie("ner", "train", "--train", SAMPLE / "train.txt", "--dev", SAMPLE / "dev.txt", "--out", out,
          "--epochs", "3", "--batch-size", "16", "--lr", "1e-4")
    knnie("ner", "memory", "build", out, "--data", SAMPLE / "train.txt")
    knnie("ner", "tune", out, "--dev", SAMPLE / "dev.txt")
    return out


def test_cli_workflow_beats_all_o(model: Path, tmp_path: Path) -> None:
    config = json.loads((model / "knnie_config.json").read_text())
    assert config["task"] == "ner" and config["tags"][0] == "O"
    assert set(config["knn"]["train"]) == {"k", "temperature", "lam", "kernel", "depth"}
    report_path = tmp_path / "report.json"
    result = knnie("ner", "evaluate", model, "--data", SAMPLE / "test.txt", "--output", report_path)
    assert "kNN-NER" in result.output
    report = json.loads(report_path.read_text())
    assert set(report) == {"vanilla", "knn", "knn_ner"}
    assert report["vanilla"]["f1"] >= MARGIN and report["knn_ner"]["f1"] >= MARGIN
    assert set(report["knn_ner"]["per_type"]) <= {"LOC", "ORG", "PER"}

    inp = tmp_path / "in.txt"
    inp.write_text("Maria Lopez flew from Oslo to Lima for Acme Corp .\nNothing here .\n")
    out = tmp_path / "pred.jsonl"
    knnie("ner", "predict", model, "--input", inp, "--output", out, "--neighbours", "2")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 2
    assert rows[0]["entities"], rows[0]
    for e in rows[0]["entities"]:
        assert rows[0]["text"][e["char_start"] : e["char_end"]] == e["text"]
        assert " ".join(rows[0]["tokens"][e["start"] : e["end"]]) == e["text"]
        assert 0 < e["score"] <= 1 and len(e["neighbours"]) == 2
        for n in e["neighbours"]:  # the training words behind it: their sentence, index and tag
            assert set(n) == {"text", "word", "label", "distance", "memory"} and n["label"] in config["tags"], n


def test_save_load_same_spans(model: Path, tmp_path: Path) -> None:
    texts = ["Anna Keller works for Siemens in Berlin.", ["Tom", "Baker", "visited", "Tokyo", "."]]
    a = EntityRecognizer.from_pretrained(model)
    a.save_pretrained(tmp_path / "copy")
    b = EntityRecognizer.from_pretrained(tmp_path / "copy")
    pa, pb = a.predict(texts, neighbours=1), b.predict(texts, neighbours=1)
    assert [p.to_dict() for p in pa] == [p.to_dict() for p in pb]
    assert pa[1].text == "Tom Baker visited Tokyo ."


def test_bad_column_file_in_cli(model: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("Ada B-PER\nsaid O\n\nhello there O\n")
    result = knnie("ner", "evaluate", model, "--data", bad, ok=False)
    assert result.exit_code == 1 and "bad.txt:4" in result.output and "expected 2 columns" in result.output


def test_char_bilstm_trains_and_its_memory_gives_back_training_tags() -> None:
    train, dev = read_tagged(SAMPLE / "train.txt"), read_tagged(SAMPLE / "dev.txt")
    r = EntityRecognizer.new(tag_set(train + dev), "char-bilstm", train)
    history = train_ner(r, train, dev, TrainConfig(epochs=6, batch_size=16, lr=2e-3))
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    r.attach_memory("train", r.build_memory(train))
    # the nearest key of a training word is itself: kNN alone (k = 1) gives back its gold tags
    r.config.knn_only["train"] = {"k": 1, "temperature": 1.0, "lam": 1.0, "kernel": "plain"}
    tags = r.predict_tags(train[:20])["knn"]
    assert tags == [s.tags for s in train[:20]]
