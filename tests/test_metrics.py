"""Relation extraction scores on cases small enough to count by hand."""

from __future__ import annotations

import numpy as np
import pytest

from knnie.evaluation.relations import is_semeval, micro_f1_ids, relation_report, semeval_official_f1

NEG = "no_relation"
GOLD = ["A", "A", "B", NEG, NEG, "B"]
PRED = ["A", "B", "B", "A", NEG, "A"]


def test_relation_report_excludes_the_negative_label():
    # correct non-negative predictions: positions 0 (A) and 2 (B) -> tp = 2
    # non-negative predictions: A×3 (0, 3, 5) + B×2 (1, 2) = 5; non-negative gold: A×2 + B×2 = 4
    # micro P = 2/5, R = 2/4, F1 = 2·0.4·0.5 / 0.9 = 4/9
    # A: tp 1, 3 predicted, 2 gold -> P 1/3, R 1/2, F1 = 2/5;  B: tp 1, 2 predicted, 2 gold -> F1 = 1/2
    # macro F1 = (2/5 + 1/2) / 2 = 0.45; accuracy counts the correct no_relation too: 3/6
    report = relation_report(GOLD, PRED, negative=NEG)
    assert report["micro_precision"] == pytest.approx(0.4)
    assert report["micro_recall"] == pytest.approx(0.5)
    assert report["micro_f1"] == pytest.approx(4 / 9)
    assert report["macro_f1"] == pytest.approx(0.45)
    assert report["accuracy"] == pytest.approx(0.5)
    assert set(report["per_relation"]) == {"A", "B"}
    assert report["per_relation"]["A"] == pytest.approx({"precision": 1 / 3, "recall": 0.5, "f1": 0.4, "support": 2})
    assert "semeval_official_f1" not in report


def test_vectorised_micro_f1_agrees_with_the_report():
    ids = {NEG: 0, "A": 1, "B": 2}
    gold = np.array([ids[g] for g in GOLD])
    pred = np.array([[ids[p] for p in PRED], [ids[g] for g in GOLD]])
    np.testing.assert_allclose(micro_f1_ids(pred, gold, negative=0), [4 / 9, 1.0])
    # without a negative label, micro-F1 is accuracy
    np.testing.assert_allclose(micro_f1_ids(pred, gold, negative=None), [0.5, 1.0])
    assert relation_report(GOLD, PRED)["micro_f1"] == pytest.approx(0.5)


SEMEVAL_GOLD = ["Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Component-Whole(e1,e2)", "Other", "Other"]
SEMEVAL_PRED = ["Cause-Effect(e2,e1)", "Cause-Effect(e2,e1)", "Other", "Component-Whole(e2,e1)", "Other"]


def test_semeval_official_score_counts_wrong_direction_as_predicted_but_wrong():
    # Cause-Effect: gold 2, predicted 2 (the wrong-direction one counts), correct 1 -> P = R = F1 = 1/2
    # Component-Whole: gold 1, predicted 1 (for an Other), correct 0 -> F1 = 0
    # Other is left out of the macro average: (1/2 + 0) / 2 = 0.25
    # (ignoring direction would give Cause-Effect F1 = 1 and a score of 0.5)
    assert semeval_official_f1(SEMEVAL_GOLD, SEMEVAL_PRED) == pytest.approx(0.25)
    assert is_semeval(set(SEMEVAL_GOLD))
    assert relation_report(SEMEVAL_GOLD, SEMEVAL_PRED, negative="Other")["semeval_official_f1"] == pytest.approx(0.25)


def test_perfect_semeval_predictions_score_one():
    assert semeval_official_f1(SEMEVAL_GOLD, SEMEVAL_GOLD) == 1.0
