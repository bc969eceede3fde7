"""Live memories: examples added to and removed from a trained model's memory without retraining
(Python and CLI), persisted atomically; and how a label the head never saw is predicted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from knnie import EntityRecognizer, KnnieError, Memory, RelationExtractor
from knnie.cli.main import app
from knnie.data.tagged import read_tagged
from knnie.errors import IncompatibleArtefactError
from knnie.memory.knn import interpolate
from knnie.memory.tuner import tune_grid

from .conftest import SAMPLE, Sample, Trained
from .helpers import write_lines

NEW = "brand new relation"
runner = CliRunner()


# -- the interpolation with labels the head never saw ---------------------------------------
# 3 labels: the head knows the first 2, the third only a memory holds (p_model is 0 there); λ = 0.25
P_KNN = np.array([[0.5, 0.2, 0.3], [0.0, 0.0, 1.0], [0.6, 0.4, 0.0]])
P_MODEL = np.array([[0.9, 0.1, 0.0], [0.4, 0.6, 0.0], [0.2, 0.8, 0.0]])


def test_head_blind_interpolation_matches_hand_computation():
    # query 1: u = 0.3, the head speaks for the rest: [0.7·0.9, 0.7·0.1, 0.3] = [0.63, 0.07, 0.3]
    #          p = 0.25·[0.5, 0.2, 0.3] + 0.75·[0.63, 0.07, 0.3] = [0.5975, 0.1025, 0.3]
    #          (plain: 0.25·[0.5, 0.2, 0.3] + 0.75·[0.9, 0.1, 0] = [0.8, 0.125, 0.075])
    # query 2: every neighbour has the new label, u = 1: p = [0, 0, 1] at any λ
    #          (plain: [0.3, 0.45, 0.25], the new label loses to the head's guess)
    # query 3: no kNN mass on the new label, u = 0: p = 0.25·[0.6, 0.4, 0] + 0.75·[0.2, 0.8, 0] = [0.3, 0.7, 0]
    p = interpolate(P_KNN, P_MODEL, 0.25, known=2)
    np.testing.assert_allclose(p, [[0.5975, 0.1025, 0.3], [0, 0, 1], [0.3, 0.7, 0]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(interpolate(P_KNN, P_MODEL, 0.25), [[0.8, 0.125, 0.075], [0.3, 0.45, 0.25],
                                                                   [0.3, 0.7, 0]], rtol=0, atol=1e-12)
    lams = np.array([0.0, 0.25, 1.0])  # one distribution per λ, as the tuner asks
    stacked = interpolate(P_KNN, P_MODEL, lams, known=2)
    for i, lam in enumerate(lams):
        np.testing.assert_array_equal(stacked[i], interpolate(P_KNN, P_MODEL, lam, known=2))


def test_without_kNN_mass_on_unknown_labels_it_is_exactly_the_plain_formula():
    rng = np.random.default_rng(0)
    p_knn = rng.dirichlet(np.ones(4), size=50)
    p_knn[:, 3] = 0.0  # the memory-only label has no neighbour
    p_model = np.pad(rng.dirichlet(np.ones(3), size=50), ((0, 0), (0, 1)))
    lams = np.linspace(0, 1, 11)
    np.testing.assert_array_equal(interpolate(p_knn, p_model, lams, known=3), interpolate(p_knn, p_model, lams))
    np.testing.assert_array_equal(interpolate(p_knn, p_model, 0.3, known=4), interpolate(p_knn, p_model, 0.3))


def test_tuning_scores_the_head_blind_interpolation():
    dist = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    labels = np.array([[2, 0], [2, 2], [1, 1]])
    gold = np.array([2, 2, 1])
    p_model = np.array([[0.9, 0.1, 0.0], [0.9, 0.1, 0.0], [0.1, 0.9, 0.0]])

    def score(pred: np.ndarray) -> np.ndarray:
        return (pred == gold).mean(axis=-1)

    blind = tune_grid(dist, labels, p_model, score, lambdas=(0.1,), known=2)
    plain = tune_grid(dist, labels, p_model, score, lambdas=(0.1,))
    # at λ = 0.1 the plain formula gives the new label at most 0.1 and loses it everywhere; with the
    # head blind to it, query 2 (all neighbours new) is right and query 1 (its nearest new) may be
    assert plain.scores.max() == pytest.approx(1 / 3)
    assert blind.scores.min() >= 2 / 3 and blind.scores.max() == pytest.approx(1.0)


# -- add / remove on the trained sample model -----------------------------------------------
@pytest.fixture(scope="module")
def saved(trained: Trained, tmp_path_factory) -> Path:
    """The session's trained model (memory 'train', tuned) saved once; tests copy it."""
    path = tmp_path_factory.mktemp("live") / "model"
    trained.extractor.save_pretrained(path)
    return path


@pytest.fixture
def model_dir(saved: Path, tmp_path: Path) -> Path:
    shutil.copytree(saved, tmp_path / "model")
    return tmp_path / "model"


def relabelled(sample: Sample, label: str, n: int) -> list:
    """n test examples of `label`, relabelled as a relation the model never saw."""
    return [replace(ex, label=NEW) for ex in sample.test if ex.label == label][:n]


def labels_of(extractor: RelationExtractor, examples: list) -> list[str | None]:
    return [p.label for p in extractor.predict(examples, neighbours=0)]


def test_add_changes_the_next_prediction_and_remove_restores_it_exactly(model_dir: Path, sample: Sample):
    extractor = RelationExtractor.from_pretrained(model_dir, device="cpu")
    label = sample.labels[0]
    added = relabelled(sample, label, 6)
    queries = sample.test
    before = extractor.final(extractor.method_distributions(queries)[0])

    n = extractor.add_examples(added, source="new")
    assert n == 6 and extractor.memories["live"].sources == ["new"] and extractor.label_space[-1] == NEW
    # each added example is now its own nearest neighbour, and the new relation gets probability
    predictions = extractor.predict(added, neighbours=1)
    assert all(p.neighbours[0].memory == "live" and p.neighbours[0].distance < 1e-3 for p in predictions)
    after = extractor.final(extractor.method_distributions(queries)[0])
    assert (after[[queries.index(ex) for ex in sample.test if ex.label == label][:6], -1] > 0).all()
    assert not np.allclose(after[:, : before.shape[1]], before)

    assert extractor.remove_examples("new") == 6
    assert "live" not in extractor.memories and NEW not in extractor.label_space
    np.testing.assert_array_equal(extractor.final(extractor.method_distributions(queries)[0]), before)


def test_a_memory_of_added_examples_is_searched_with_the_tuned_memory(model_dir: Path, sample: Sample):
    """An untuned memory of its own gives the predictions of the same examples added to the tuned memory
    (one kNN over both), not the mean of the two memories, which would give the new label half the mass
    of every query."""
    own, shared = (RelationExtractor.from_pretrained(model_dir, device="cpu") for _ in range(2))
    added = relabelled(sample, sample.labels[0], 6)
    own.add_examples(added, memory="live")
    shared.add_examples(added, memory="train")
    p_own = own.final(own.method_distributions(sample.test)[0])
    np.testing.assert_allclose(p_own, shared.final(shared.method_distributions(sample.test)[0]), rtol=0, atol=1e-9)
    assert (p_own[:, -1] < 0.5).mean() > 0.5
    own.tune(sample.dev)  # once tuned, the memory is consulted on its own and mixed
    assert set(own.config.mix) == {"train", "live"}
    vectors, p_model = own.encode(sample.test[:5])
    assert set(own.memory_distributions(p_model, own.search(vectors))) == {"train", "live"}


def test_a_new_label_in_the_tuned_memory_wins_where_the_plain_formula_cannot(model_dir: Path, sample: Sample):
    extractor = RelationExtractor.from_pretrained(model_dir, device="cpu")
    # a head trusted more than the memory (λ = 0.3), and the 4 nearest entries: the added copies at distance 0
    extractor.config.knn["train"] = {"k": 4, "temperature": 1.0, "lam": 0.3, "kernel": "plain"}
    added = relabelled(sample, sample.labels[1], 6)
    extractor.add_examples(added, memory="train", source="new")
    vectors, p_model = extractor.encode(added)
    search = extractor.search(vectors)["train"]
    params = extractor.params("train")
    blind = extractor._memory_distribution("train", params, p_model, search)
    plain = extractor._memory_distribution("train", params, p_model, search, head_blind=False)
    new = extractor.label_space.index(NEW)
    np.testing.assert_allclose(blind[:, new], 1.0)  # u = 1: the head has no say on a label it never saw
    np.testing.assert_allclose(plain[:, new], 0.3)  # λ·1 + (1 − λ)·0: wins only where the head is unsure
    assert labels_of(extractor, added) == [NEW] * 6


def test_add_with_save_to_is_durable_and_keeps_other_processes_additions(model_dir: Path, sample: Sample):
    first = RelationExtractor.from_pretrained(model_dir, device="cpu")
    second = RelationExtractor.from_pretrained(model_dir, device="cpu")  # another process's view, loaded before
    a, b = relabelled(sample, sample.labels[2], 3), relabelled(sample, sample.labels[3], 4)
    first.add_examples(a, memory="train", source="a", save_to=model_dir)
    second.add_examples(b, memory="train", source="b", save_to=model_dir)
    reloaded = RelationExtractor.from_pretrained(model_dir, device="cpu")
    train = len(sample.train)
    assert reloaded.memories["train"].sources == ["default", "a", "b"] and len(reloaded.memories["train"]) == train + 7
    assert second.memories["train"].sources == reloaded.memories["train"].sources  # attached in-process too
    np.testing.assert_array_equal(reloaded.final(reloaded.method_distributions(a + b)[0]),
                                  second.final(second.method_distributions(a + b)[0]))

    assert second.remove_examples("a", save_to=model_dir) == 3
    assert RelationExtractor.from_pretrained(model_dir, device="cpu").memories["train"].sources == ["default", "b"]
    second.add_examples(a, source="a", save_to=model_dir)  # a memory of its own, then removed with its directory
    assert (model_dir / "memories" / "live").is_dir()
    assert second.remove_examples("a", memory="live", save_to=model_dir) == 3
    assert not (model_dir / "memories" / "live").exists() and "live" not in second.memories


def test_concurrent_writers_are_serialised_and_none_is_lost(model_dir: Path, sample: Sample):
    extractor = RelationExtractor.from_pretrained(model_dir, device="cpu")
    batches = {f"s{i}": relabelled(sample, label, 2) for i, label in enumerate(sample.labels[:4])}
    with ThreadPoolExecutor(4) as pool:
        added = list(pool.map(lambda s: extractor.add_examples(batches[s], source=s, save_to=model_dir), batches))
    assert added == [2] * 4
    saved = RelationExtractor.from_pretrained(model_dir, device="cpu").memories["live"]
    assert sorted(saved.sources) == sorted(extractor.memories["live"].sources) == sorted(batches)
    assert len(saved) == len(extractor.memories["live"]) == 8


def test_a_failed_write_leaves_the_previous_memory_usable(model_dir: Path, sample: Sample, monkeypatch):
    extractor = RelationExtractor.from_pretrained(model_dir, device="cpu")
    before = extractor.final(extractor.method_distributions(sample.test)[0])

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("knnie.io.SafetensorsWriter.close", fail)  # after the keys are written, before the config
    with pytest.raises(OSError, match="disk full"):
        extractor.add_examples(relabelled(sample, sample.labels[0], 5), memory="train", save_to=model_dir)
    monkeypatch.undo()
    assert extractor.memories["train"].sources == ["default"]  # the attached memory did not change either
    assert sorted(p.name for p in (model_dir / "memories").iterdir()) == ["train"]  # no debris
    reloaded = RelationExtractor.from_pretrained(model_dir, device="cpu")
    np.testing.assert_array_equal(reloaded.final(reloaded.method_distributions(sample.test)[0]), before)


KILL_MIDWAY = """
import os, signal, sys
from dataclasses import replace
import knnie.io as io
from knnie import RelationExtractor, read_relations
model = RelationExtractor.from_pretrained(sys.argv[1], device="cpu")
examples = [replace(ex, label="killed") for ex in read_relations(sys.argv[2])[:4]]
io.SafetensorsWriter.close = lambda *a: os.kill(os.getpid(), signal.SIGKILL)  # dies with the new keys half saved
model.add_examples(examples, memory="train", save_to=sys.argv[1])
"""


def test_a_process_killed_mid_write_leaves_the_previous_memory_intact(model_dir: Path, sample: Sample):
    extractor = RelationExtractor.from_pretrained(model_dir, device="cpu")
    before = extractor.final(extractor.method_distributions(sample.test)[0])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    done = subprocess.run([sys.executable, "-c", KILL_MIDWAY, str(model_dir), str(SAMPLE / "test.jsonl")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == -9, done.stderr
    debris = [p.name for p in (model_dir / "memories").iterdir() if p.name != "train"]
    assert any(name.endswith(".tmp") for name in debris), debris  # it did die mid-write
    reloaded = RelationExtractor.from_pretrained(model_dir, device="cpu")
    assert list(reloaded.memories) == ["train"] and reloaded.memories["train"].sources == ["default"]
    np.testing.assert_array_equal(reloaded.final(reloaded.method_distributions(sample.test)[0]), before)
    # the next write clears the debris and works
    reloaded.add_examples(relabelled(sample, sample.labels[0], 2), memory="train", source="x", save_to=model_dir)
    assert sorted(p.name for p in (model_dir / "memories").iterdir()) == ["train"]


@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_remove_restores_the_predictions_of_an_approximate_memory(model_dir: Path, sample: Sample, index: str):
    extractor = RelationExtractor.from_pretrained(model_dir, memories=False, device="cpu")
    extractor.attach_memory("train", extractor.build_memory(sample.train, index=index))
    before = extractor.final(extractor.method_distributions(sample.test)[0])
    extractor.add_examples(relabelled(sample, sample.labels[0], 8), memory="train", source="new")
    assert extractor.memories["train"].config.index == index
    extractor.remove_examples("new")
    np.testing.assert_array_equal(extractor.final(extractor.method_distributions(sample.test)[0]), before)


def test_bad_removals_and_foreign_memories_are_refused_and_change_nothing(model_dir: Path, sample: Sample,
                                                                          tmp_path: Path):
    extractor = RelationExtractor.from_pretrained(model_dir, device="cpu")
    with pytest.raises(KnnieError, match="no memory holds source 'nope' \\(sources: default\\)"):
        extractor.remove_examples("nope", save_to=model_dir)
    with pytest.raises(KnnieError, match="no memory 'other'"):
        extractor.remove_examples("default", memory="other")
    with pytest.raises(KnnieError, match="invalid memory name"):
        extractor.add_examples(sample.test[:2], memory="../escape")
    # a memory built by other weights, saved under this model: refused, left as it was
    foreign = Memory.from_labels(np.ones((3, extractor.memories["train"].config.dim), np.float32), ["x", "y", "x"],
                                 [{}, {}, {}], "another-encoder")
    foreign.save(model_dir / "memories" / "other")
    with pytest.raises(IncompatibleArtefactError, match="fingerprint"):
        extractor.add_examples(sample.test[:2], memory="other", save_to=model_dir)
    assert Memory.load(model_dir / "memories" / "other").sources == ["default"]
    assert "other" not in extractor.memories
    # a directory that is not a saved copy of this model
    (tmp_path / "elsewhere").mkdir()
    write_lines(tmp_path / "elsewhere" / "knnie_config.json", {"fingerprint": "0000"})
    with pytest.raises(IncompatibleArtefactError, match="not a saved copy of this model"):
        extractor.add_examples(sample.test[:2], save_to=tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere" / "memories").exists()


# -- CLI ---------------------------------------------------------------------------------------
def knnie(*args, code: int = 0) -> str:
    """The command's output, with rich's line wrapping undone."""
    result = runner.invoke(app, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return " ".join(result.output.split())


def test_cli_add_and_remove(model_dir: Path, sample: Sample, tmp_path: Path):
    new = write_lines(tmp_path / "founders.jsonl", *[ex.to_dict() for ex in relabelled(sample, sample.labels[0], 5)])
    result = knnie("memory", "add", model_dir, "--data", new, "--device", "cpu")
    assert "memory 'live': +5 entries from 'founders' (5 in all); new labels: brand new relation" in result
    model = RelationExtractor.from_pretrained(model_dir, device="cpu")
    assert model.memories["live"].sources == ["founders"]

    result = knnie("memory", "add", model_dir, "--data", new, "--memory", "train", "--source", "again",
                   "--device", "cpu")
    assert f"+5 entries from 'again' ({len(sample.train) + 5} in all); new labels: none" in result

    result = knnie("memory", "remove", model_dir, "--source", "founders")
    assert "removed 5 entries of 'founders': memory 'live' deleted; labels gone: none" in result
    result = knnie("memory", "remove", model_dir, "--source", "again", "--memory", "train")
    assert f"'train' {len(sample.train) + 5} → {len(sample.train)}; labels gone: brand new relation" in result


def test_cli_bad_input_is_a_clear_error_and_nothing_is_lost(model_dir: Path, tmp_path: Path):
    saved = {p.name: p.read_bytes() for p in (model_dir / "memories" / "train").iterdir()}
    result = knnie("memory", "remove", model_dir, "--source", "nope", code=1)
    assert "no memory holds source 'nope' (sources: default)" in result
    bad = write_lines(tmp_path / "bad.jsonl", {"text": "Ann met Bob .", "head": {"start": 0, "end": 3},
                                               "tail": {"start": 8, "end": 11}, "label": "x"}, "{not json")
    result = knnie("memory", "add", model_dir, "--data", bad, "--memory", "train", "--device", "cpu", code=1)
    assert "bad.jsonl:2: malformed JSON" in result
    result = knnie("memory", "add", model_dir, "--data", tmp_path / "missing.jsonl", "--memory", "train", code=1)
    assert "missing.jsonl" in result
    config = model_dir / "memories" / "train" / "memory.json"
    config.write_text(json.dumps(json.loads(config.read_text()) | {"fingerprint": "another-encoder"}))
    good = write_lines(tmp_path / "good.jsonl", bad.read_text().splitlines()[0])
    result = knnie("memory", "add", model_dir, "--data", good, "--memory", "train", "--device", "cpu", code=1)
    assert "another-encoder" in result and "Rebuild it" in result
    del saved["memory.json"]
    assert {p.name: p.read_bytes() for p in (model_dir / "memories" / "train").iterdir() if p.name in saved} == saved


def test_cli_ner_add_and_remove_on_a_headless_recognizer(tmp_path: Path):
    sentences = read_tagged(SAMPLE.parent / "ner" / "train.txt")
    recognizer = EntityRecognizer.headless(max_length=64, device="cpu")
    recognizer.attach_memory("train", recognizer.build_memory(sentences[:20]))
    recognizer.config.knn_only["train"] = {"k": 1, "temperature": 1.0, "lam": 1.0, "kernel": "plain"}  # nearest word
    recognizer.save_pretrained(tmp_path / "ner")
    new = write_lines(tmp_path / "products.jsonl", {"tokens": ["Acme", "sells", "Zorblax", "."],
                                                    "tags": ["B-ORG", "O", "B-PRODUCT", "O"]})
    result = knnie("ner", "memory", "add", tmp_path / "ner", "--data", new, "--memory", "train", "--device", "cpu")
    assert "memory 'train': +4 entries from 'products'" in result and "B-PRODUCT" in result
    loaded = EntityRecognizer.from_pretrained(tmp_path / "ner", device="cpu")
    assert "B-PRODUCT" in loaded.label_space
    assert loaded.predict([["Acme", "sells", "Zorblax", "."]])[0].tags[2] == "B-PRODUCT"
    result = knnie("ner", "memory", "remove", tmp_path / "ner", "--source", "products")
    assert "removed 4 entries of 'products'" in result and "B-PRODUCT" in result
    assert "B-PRODUCT" not in EntityRecognizer.from_pretrained(tmp_path / "ner", device="cpu").label_space
