"""The foundation users build on: memories with their own labels, aligned to a model by name;
N memories mixed by weights tuned on dev; live additions that can be undone; `knnie.load`.

Runs on an UNTRAINED classifier head over the pretrained encoder (no training: fast). Its head is
random, so the classifier alone is near chance on the shipped 8-relation sample, while the
encoder's marker vectors already group sentences of one relation: a memory must help here.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import knnie
from knnie import DataError, EntityRecognizer, Memory, RelationExtractor, example_from_text
from knnie.memory.knn import knn_probs
from knnie.memory.tuner import KnnParams


@pytest.fixture(scope="module")
def untrained(sample) -> RelationExtractor:
    torch.manual_seed(0)
    extractor = RelationExtractor.new(sample.labels)
    extractor.attach_memory("train", extractor.build_memory(sample.train, source="train.jsonl"))
    return extractor


@pytest.fixture
def extractor(untrained) -> RelationExtractor:
    """A copy whose memories and settings a test may change (the weights are shared, never trained)."""
    copy = RelationExtractor(untrained.model, dataclasses.replace(untrained.config, knn={}, knn_only={}, mix=None))
    copy._fingerprint = untrained.fingerprint
    for name, memory in untrained.memories.items():
        copy.attach_memory(name, Memory.merge([memory]))
    return copy


def accuracy(extractor: RelationExtractor, examples) -> float:
    return float(np.mean([p.label == ex.label for p, ex in zip(extractor.predict(examples, neighbours=0), examples)]))


def test_tuning_finds_a_memory_that_must_help(extractor, sample):
    """Vanilla is a random head (about 1/8 right); the training memory lifts dev F1 by 0.3 at least."""
    report = extractor.tune(sample.dev)
    assert report["vanilla_f1"] < 0.3
    assert report["memories"]["train"]["dev_f1"] > report["vanilla_f1"] + 0.3
    assert report["memories"]["train"]["knn_only_dev_f1"] >= 0.5


def test_a_label_the_head_never_saw_is_predicted_from_the_memory(extractor, sample):
    """A memory of examples relabelled 'founded by' (unknown to the head) wins for queries next to its keys."""
    new = [dataclasses.replace(ex, label="founded by") for ex in sample.test[:12]]
    extractor.attach_memory("new", extractor.build_memory(new, source="new.jsonl"))
    extractor.config.knn["new"] = {"k": 1, "temperature": 1.0, "lam": 1.0, "kernel": "plain"}

    assert "founded by" in extractor.label_space and "founded by" not in extractor.labels
    predictions = extractor.predict(sample.test[:12], neighbours=1)
    assert [p.label for p in predictions] == ["founded by"] * 12
    assert all(p.neighbours[0].label == "founded by" and p.neighbours[0].distance < 1e-3 for p in predictions)


def test_add_then_remove_restores_predictions_exactly(extractor, sample):
    extractor.config.knn["train"] = dataclasses.asdict(KnnParams(8, 1.0, 1.0, "rbf"))
    before = extractor.predict(sample.test, neighbours=3)
    added = [dataclasses.replace(ex, label="founded by") for ex in sample.dev[:40]]
    vectors, _ = extractor.encode(added)
    memory = extractor.memories["train"]
    memory.add(vectors, [ex.label for ex in added], [ex.to_dict() for ex in added], source="added.jsonl")
    changed = extractor.predict(sample.test, neighbours=3)
    assert [p.label for p in changed] != [p.label for p in before]  # the addition is visible at once

    memory.remove("added.jsonl")
    after = extractor.predict(sample.test, neighbours=3)
    assert [(p.label, p.probability) for p in after] == [(p.label, p.probability) for p in before]
    assert [[(n.label, n.distance) for n in p.neighbours] for p in after] == [
        [(n.label, n.distance) for n in p.neighbours] for p in before]


def test_three_memories_are_mixed_with_weights_tuned_on_dev(extractor, sample):
    """Three memories (thirds of train): tuning weighs all three, and the mix is what predictions use."""
    del extractor.memories["train"]
    for i in range(3):
        part = sample.train[i::3]
        extractor.attach_memory(f"part{i}", extractor.build_memory(part, source=f"part{i}"))
    report = extractor.tune(sample.dev)

    weights = extractor.config.mix
    assert set(weights) == {"part0", "part1", "part2"} and sum(weights.values()) == pytest.approx(1.0)
    assert report["mix"]["dev_f1"] >= max(r["dev_f1"] for r in report["memories"].values())
    vectors, p_model = extractor.encode(sample.dev)
    searches = extractor.search(vectors)
    per = extractor.memory_distributions(p_model, searches)
    expected = sum(w * per[name] for name, w in weights.items())
    np.testing.assert_allclose(extractor.distributions(p_model, searches)["knn_re"], expected)
    # the third memory counts: giving it other labels changes the mixed distribution
    extractor.memories["part2"].values[:] = 0
    assert not np.allclose(extractor.distributions(p_model, extractor.search(vectors))["knn_re"], expected)


def test_an_untuned_mix_is_the_mean(extractor, sample):
    extractor.attach_memory("dev", extractor.build_memory(sample.dev, source="dev"))
    vectors, p_model = extractor.encode(sample.test[:10])
    searches = extractor.search(vectors)
    per = extractor.memory_distributions(p_model, searches)
    np.testing.assert_allclose(extractor.distributions(p_model, searches)["knn_re"], (per["train"] + per["dev"]) / 2)


def test_an_untuned_memory_gives_knn_only_at_lambda_1_and_knn_re_at_the_default(extractor, sample):
    """Before `tune`, 'knn' (and a prediction's p_knn) is the memory alone, not the default mix."""
    vectors, p_model = extractor.encode(sample.test[:10])
    searches = extractor.search(vectors)
    dist, ids = searches["train"]
    k = extractor.params("train").k
    labels = extractor.memories["train"].values[ids[:, :k]]
    p_knn = knn_probs(dist[:, :k], labels, len(extractor.labels), 1.0, "rbf")  # UNTUNED: k 16, T 1, rbf
    p = extractor.distributions(p_model, searches)
    np.testing.assert_allclose(p["knn"], p_knn, atol=1e-12)
    np.testing.assert_allclose(p["knn_re"], 0.5 * p_knn + 0.5 * p_model, atol=1e-12)
    [pred] = extractor.predict(sample.test[:1])
    assert pred.p_knn == pytest.approx(p_knn[0, extractor.labels.index(pred.label)])


def test_load_opens_any_model_with_its_own_class(untrained, tmp_path, sample):
    untrained.save_pretrained(tmp_path / "re")
    loaded = knnie.load(tmp_path / "re")
    assert type(loaded) is RelationExtractor and list(loaded.memories) == ["train"]
    assert loaded.memories["train"].sources == ["train.jsonl"]
    with pytest.raises(DataError, match="not a NER model"):
        EntityRecognizer.from_pretrained(tmp_path / "re")


def test_example_from_text_maps_character_spans_to_tokens():
    text = "Jean-Pierre Jeunet directed Amélie in 2001."
    ex = example_from_text(text, (0, 18, "PER"), (28, 34, "WORK"), "director")
    assert ex.tokens[ex.head.start : ex.head.end] == ["Jean", "-", "Pierre", "Jeunet"]
    assert ex.tokens[ex.tail.start : ex.tail.end] == ["Amélie"]
    assert (ex.head.type, ex.tail.type, ex.label) == ("PER", "WORK", "director")
    assert [text[a:b] for a, b in ex.char_offsets] == ex.tokens
