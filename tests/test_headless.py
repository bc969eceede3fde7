"""Headless models: no classifier head, predictions from memories alone (λ = 1), tuned over k, T
and the kernel, saved and loaded without head.safetensors. No training: the pretrained encoder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from knnie import DataError, KnnieError, RelationExtractor, TrainConfig, train
from knnie.cli.main import app
from knnie.data.tagged import read_tagged
from knnie.memory.tuner import K_GRID
from knnie.tasks.ner import EntityRecognizer, train_ner

SAMPLE = Path(__file__).parents[1] / "data" / "sample"
runner = CliRunner()
NEAREST = {"k": 1, "temperature": 1.0, "lam": 1.0, "kernel": "plain"}


@pytest.fixture(scope="module")
def memory_set(sample):
    return sample.train[::10]  # 40 examples, every relation


@pytest.fixture(scope="module")
def headless(memory_set) -> RelationExtractor:
    """A headless extractor with a memory of 40 sample examples (shared: tests that change its
    settings work on a loaded copy)."""
    extractor = RelationExtractor.headless(max_length=128, device="cpu")
    extractor.attach_memory("train", extractor.build_memory(memory_set))
    return extractor


@pytest.fixture(scope="module")
def saved(headless, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("headless") / "model"
    headless.save_pretrained(path)
    return path


def copy(saved: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(saved, tmp_path / "model"))


def test_a_headless_extractor_predicts_the_label_of_the_nearest_keys(saved, sample):
    extractor = RelationExtractor.from_pretrained(saved, device="cpu")
    extractor.config.knn_only["train"] = NEAREST
    predictions = extractor.predict(sample.test[:20], neighbours=1)
    assert [p.label for p in predictions] == [p.neighbours[0].label for p in predictions]
    assert all(p.probability == 1.0 for p in predictions)
    vectors, p_model = extractor.encode(sample.test[:3])
    assert p_model.shape == (3, 0) and vectors.shape == (3, 768)


def test_lambda_is_one_and_the_labels_are_the_memories(headless, sample):
    assert not headless.has_head and headless.labels == [] and headless.label_space == sample.labels
    headless.config.knn["train"] = {"k": 4, "temperature": 2.0, "lam": 0.3, "kernel": "rbf"}
    try:
        assert headless.params("train").lam == 1.0 and headless.params("train", knn_only=True).lam == 1.0
    finally:
        headless.config.knn.clear()
    report = headless.evaluate(sample.dev[:16])
    assert set(report) == {"knn"}  # no vanilla, and kNN-RE would be kNN-only again


def test_tuning_searches_k_t_and_kernel_at_lambda_one(saved, sample, tmp_path):
    extractor = RelationExtractor.from_pretrained(copy(saved, tmp_path), device="cpu")
    report = extractor.tune(sample.dev[::4])
    chosen = report["memories"]["train"]
    assert "vanilla_f1" not in report and chosen["params"]["lam"] == 1.0 and chosen["params"]["k"] in K_GRID
    assert extractor.config.knn["train"] == extractor.config.knn_only["train"] == chosen["params"]
    assert chosen["dev_f1"] == chosen["knn_only_dev_f1"]
    dev = extractor.evaluate(sample.dev[::4])
    assert dev["knn"]["micro_f1"] == pytest.approx(chosen["dev_f1"], abs=1e-9)


def test_saved_without_head_and_loaded_to_the_same_predictions(headless, saved, sample):
    config = json.loads((saved / "knnie_config.json").read_text())
    assert config["head"] is False and config["labels"] == [] and "head.safetensors" not in config["checksums"]
    assert not (saved / "head.safetensors").exists()
    loaded = RelationExtractor.from_pretrained(saved, device="cpu")
    before, after = headless.predict(sample.test[:20], neighbours=3), loaded.predict(sample.test[:20], neighbours=3)
    assert [p.label for p in after] == [p.label for p in before]
    np.testing.assert_allclose([p.probability for p in after], [p.probability for p in before], atol=1e-6)
    assert [[n.record for n in p.neighbours] for p in after] == [[n.record for n in p.neighbours] for p in before]


def test_without_a_memory_there_is_nothing_to_predict_and_nothing_to_train(sample):
    extractor = RelationExtractor.headless(max_length=128, device="cpu")
    with pytest.raises(KnnieError, match="no classifier head: it predicts from memories alone; attach one"):
        extractor.predict(sample.test[:2])
    with pytest.raises(KnnieError, match="no classifier head to train"):
        train(extractor, sample.train[:4], [], TrainConfig(epochs=1))


def test_the_negative_label_comes_from_the_memories_unless_given():
    extractor = RelationExtractor.headless(max_length=128, device="cpu")
    from knnie import example_from_text

    examples = [example_from_text("Ada Lovelace was born in London.", (0, 12, None), (25, 31, None), label)
                for label in ("born in", "no_relation")]
    extractor.attach_memory("m", extractor.build_memory(examples))
    assert extractor.negative_label == "no_relation"
    extractor.config.negative_label = "born in"
    assert extractor.negative_label == "born in"


def test_a_config_and_head_file_that_disagree_are_refused(saved, tmp_path):
    path = copy(saved, tmp_path)
    config = path / "knnie_config.json"
    raw = json.loads(config.read_text())
    config.write_text(json.dumps({**raw, "checksums": {**raw["checksums"], "head.safetensors": "0" * 64}}))
    with pytest.raises(DataError, match="field 'head': says the model has no classifier head, but its checksums"):
        RelationExtractor.from_pretrained(path, device="cpu")
    config.write_text(json.dumps({**raw, "head": "no"}))
    with pytest.raises(DataError, match="lists no checksums"):  # a headed model needs its head's checksum
        RelationExtractor.from_pretrained(path, device="cpu")


def test_a_headed_config_needs_true_or_false_for_head(tmp_path):
    path = tmp_path / "model"
    RelationExtractor.new(["a", "b"], max_length=32, device="cpu").save_pretrained(path)
    config = path / "knnie_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "head": "yes"}))
    with pytest.raises(DataError, match="field 'head': needs true or false"):
        RelationExtractor.from_pretrained(path, device="cpu")


def test_the_cli_builds_tunes_evaluates_and_predicts_with_a_headless_model(saved, memory_set, tmp_path):
    path = copy(saved, tmp_path)
    data = SAMPLE / "fewrel8"
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(data.joinpath("dev.jsonl").read_text().splitlines(keepends=True)[::8]))
    for args in (["memory", "build", path, "--data", dev, "--name", "dev"],
                 ["tune", path, "--dev", dev]):
        result = runner.invoke(app, [str(a) for a in args])
        assert result.exit_code == 0, result.output
    assert "no head: kNN only" in result.output
    result = runner.invoke(app, ["evaluate", str(path), "--data", str(dev), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "kNN-only" in result.output and "vanilla" not in result.output
    out = tmp_path / "predictions.jsonl"
    result = runner.invoke(app, ["predict", str(path), "--input", str(SAMPLE / "sentences.jsonl"), "--output",
                                 str(out)])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 6 and all(r["prediction"] in {ex.label for ex in memory_set} for r in rows)


def test_a_headless_recognizer_tags_words_by_their_nearest_training_words(tmp_path):
    sentences = read_tagged(SAMPLE / "ner" / "train.txt")
    recognizer = EntityRecognizer.headless(max_length=64, device="cpu")
    recognizer.attach_memory("train", recognizer.build_memory(sentences[:40]))
    recognizer.config.knn_only["train"] = NEAREST
    queries = sentences[40:50]
    predictions = recognizer.predict(queries)
    nearest = recognizer.search(recognizer.representer.encode(queries), k=1)["train"][1][:, 0]
    memory = recognizer.memories["train"]
    assert [t for p in predictions for t in p.tags] == [memory.labels[memory.values[i]] for i in nearest]
    report = recognizer.tune(read_tagged(SAMPLE / "ner" / "dev.txt"))
    assert "vanilla_f1" not in report and recognizer.config.knn["train"]["lam"] == 1.0
    recognizer.save_pretrained(tmp_path / "ner")
    loaded = EntityRecognizer.from_pretrained(tmp_path / "ner", device="cpu")
    assert not loaded.has_head and loaded.predict(queries)[0].tags == recognizer.predict(queries)[0].tags
    with pytest.raises(KnnieError, match="no classifier head to train"):
        train_ner(loaded, sentences[:4], [])
