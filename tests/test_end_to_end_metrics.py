"""End-to-end (PURE) entity, relation and strict-relation scores on cases counted by hand."""

from __future__ import annotations

import pytest

from knnie import Document, Relation, Span
from knnie.evaluation import end_to_end_scores

TOKENS = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]
A, B, C, D = Span(0, 2, "Method"), Span(3, 4, "Task"), Span(5, 7, "Metric"), Span(8, 9, "Material")
GOLD = [
    Document(TOKENS, entities=[A, B, C, D], relations=[
        Relation(A, B, "USED-FOR"), Relation(C, A, "EVALUATE-FOR"), Relation(B, D, "PART-OF"),
        Relation(A, D, "CONJUNCTION")]),
    Document(["x", "y", "z"], entities=[Span(0, 1, "Task"), Span(2, 3, "Method")],
             relations=[Relation(Span(2, 3, "Method"), Span(0, 1, "Task"), "USED-FOR")]),
]
B_AS_METHOD, C_SHORT = Span(3, 4, "Method"), Span(5, 6, "Metric")  # wrong type; wrong boundary
PREDICTED = [
    Document(TOKENS, entities=[A, B_AS_METHOD, C_SHORT, D], relations=[
        Relation(A, B_AS_METHOD, "USED-FOR"),  # boundaries and label right, B's type wrong: not strict
        Relation(B_AS_METHOD, A, "USED-FOR"),  # reversed: wrong
        Relation(C_SHORT, A, "EVALUATE-FOR"),  # tail boundary wrong: wrong
        Relation(B_AS_METHOD, D, "PART-OF"),  # right, not strict
        Relation(A, D, "CONJUNCTION"),  # right and strict: A and D predicted with the right type
    ]),
    Document(["x", "y", "z"]),  # nothing found (relations None)
]


def test_scores_counted_by_hand():
    report = end_to_end_scores(GOLD, PREDICTED)
    # entities: 6 gold, 4 predicted, 2 right (A, D) -> P 1/2, R 1/3, F1 = 2·(1/2)(1/3) / (5/6) = 0.4
    assert report["entity"] == pytest.approx({"precision": 0.5, "recall": 1 / 3, "f1": 0.4})
    # relations: 5 gold, 5 predicted, 3 right by boundaries and label -> 0.6; strict: 1 right -> 0.2
    assert report["relation"] == pytest.approx({"precision": 0.6, "recall": 0.6, "f1": 0.6})
    assert report["strict_relation"] == pytest.approx({"precision": 0.2, "recall": 0.2, "f1": 0.2})
    assert report["counts"] == {"entity_correct": 2, "entity_gold": 6, "entity_predicted": 4, "relation_correct": 3,
                                "relation_gold": 5, "relation_predicted": 5, "strict_relation_correct": 1}


def test_gold_against_itself_is_perfect_and_nothing_predicted_is_zero():
    perfect = end_to_end_scores(GOLD, GOLD)
    assert all(perfect[k]["f1"] == 1.0 for k in ("entity", "relation", "strict_relation"))
    empty = end_to_end_scores(GOLD, [Document(d.tokens) for d in GOLD])
    assert empty["entity"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert empty["counts"]["relation_gold"] == 5 and empty["counts"]["relation_predicted"] == 0


def test_relation_label_must_match_and_entity_types_need_not():
    # one gold relation A -> B; predicted with both types wrong but boundaries and label right:
    # right for "relation", wrong for "strict"; with the label wrong: wrong for both
    gold = [Document(TOKENS, entities=[A, B], relations=[Relation(A, B, "USED-FOR")])]
    a, b = Span(0, 2, "Task"), Span(3, 4, "Metric")
    typed_wrong = [Document(TOKENS, entities=[a, b], relations=[Relation(a, b, "USED-FOR")])]
    report = end_to_end_scores(gold, typed_wrong)
    assert (report["entity"]["f1"], report["relation"]["f1"], report["strict_relation"]["f1"]) == (0.0, 1.0, 0.0)
    label_wrong = [Document(TOKENS, entities=[A, B], relations=[Relation(A, B, "PART-OF")])]
    report = end_to_end_scores(gold, label_wrong)
    assert (report["entity"]["f1"], report["relation"]["f1"], report["strict_relation"]["f1"]) == (1.0, 0.0, 0.0)


def test_misaligned_documents_are_refused():
    with pytest.raises(ValueError, match="2 gold documents but 1 predicted"):
        end_to_end_scores(GOLD, PREDICTED[:1])
    with pytest.raises(ValueError, match=r"document 1 .*tokens differ"):
        end_to_end_scores(GOLD, [PREDICTED[0], Document(["x", "y"])])
