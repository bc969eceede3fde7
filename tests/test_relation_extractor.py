"""RelationExtractor end to end on the shipped FewRel sample (8 relations, 400/160/160).

All tests share the session's trained model (see conftest.py); none changes its weights.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np
import pytest

from knnie import DataError, IncompatibleArtefactError, KnnieError, RelationExtractor
from knnie.memory import KERNELS
from knnie.memory.tuner import K_GRID, LAMBDA_GRID


def test_vanilla_beats_the_majority_class_baseline(trained, sample):
    """Test micro-F1 (no negative label here, so accuracy) is at least 0.4 above the
    majority-class baseline, which is 1/8 = 0.125 on the balanced sample."""
    majority = Counter(ex.label for ex in sample.test).most_common(1)[0][1] / len(sample.test)
    assert majority == 0.125

    report = trained.extractor.evaluate(sample.test)
    assert set(report) == {"vanilla", "knn", "knn_re"}
    assert report["vanilla"]["micro_f1"] >= majority + 0.4


def test_tuning_chooses_params_that_evaluation_reproduces(trained, sample):
    report, config = trained.tune_report, trained.extractor.config
    chosen = report["memories"]["train"]
    params = chosen["params"]
    assert params["k"] in K_GRID and params["lam"] in LAMBDA_GRID and params["kernel"] in KERNELS
    assert params["temperature"] > 0
    assert config.knn["train"] == params and config.knn_only["train"]["lam"] == 1.0
    # kNN alone, with the 400 training examples as memory, is right on at least 60 % of dev (8 relations)
    assert chosen["knn_only_dev_f1"] >= 0.6
    # evaluation uses what was chosen: it reproduces the tuned dev scores
    dev = trained.extractor.evaluate(sample.dev)
    assert dev["knn_re"]["micro_f1"] == pytest.approx(chosen["dev_f1"], abs=1e-9)
    assert dev["knn"]["micro_f1"] == pytest.approx(chosen["knn_only_dev_f1"], abs=1e-9)
    assert dev["vanilla"]["micro_f1"] == pytest.approx(report["vanilla_f1"], abs=1e-9)


def test_save_and_load_give_identical_predictions(trained, sample, tmp_path):
    examples = sample.test[:40]
    before = trained.extractor.predict(examples, neighbours=3)
    trained.extractor.save_pretrained(tmp_path / "model")
    loaded = RelationExtractor.from_pretrained(tmp_path / "model")
    after = loaded.predict(examples, neighbours=3)

    assert loaded.config.knn == trained.extractor.config.knn and list(loaded.memories) == ["train"]
    assert [p.label for p in after] == [p.label for p in before]
    np.testing.assert_allclose([p.probability for p in after], [p.probability for p in before], atol=1e-6)
    for a, b in zip(after, before):
        assert [(n.memory, n.label, n.record) for n in a.neighbours] == [
            (n.memory, n.label, n.record) for n in b.neighbours]
        np.testing.assert_allclose([n.distance for n in a.neighbours], [n.distance for n in b.neighbours], rtol=1e-5)


def test_memory_built_by_another_model_is_refused(trained, sample):
    other = RelationExtractor.new(sample.labels)  # same labels, untrained: another vector space
    memory = other.build_memory(sample.train[:8])
    with pytest.raises(IncompatibleArtefactError, match="fingerprint"):
        trained.extractor.attach_memory("other", memory)
    assert list(trained.extractor.memories) == ["train"]


def test_predictions_show_nearest_neighbours_first(trained, sample):
    labels = set(sample.labels)
    predictions = trained.extractor.predict(sample.test[:20], neighbours=5)
    assert len(predictions) == 20
    for p in predictions:
        assert p.label in labels and 0 < p.probability <= 1 + 1e-12  # (floating-point rounding)
        distances = [n.distance for n in p.neighbours]
        assert len(distances) == 5 and distances == sorted(distances)
        for n in p.neighbours:
            assert n.memory == "train" and n.label in labels
            assert n.record["label"] == n.label  # the neighbour's record is the example behind it
    assert trained.extractor.predict([]) == []


def test_unknown_gold_label_is_a_data_error(trained, sample):
    bad = dataclasses.replace(sample.test[0], label="founded by", source="mine.jsonl:3")
    with pytest.raises(DataError, match="'founded by' is not one of the model's 8 labels") as err:
        trained.extractor.evaluate([*sample.test[:2], bad])
    assert err.value.field == "label"
    assert "mine.jsonl:3 field 'label'" in str(err.value)


def test_memory_of_no_examples_is_refused(trained):
    with pytest.raises(KnnieError, match="empty memory"):
        trained.extractor.build_memory([])
