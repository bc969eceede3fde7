"""Scores for every task."""

from knnie.evaluation.end_to_end import end_to_end_scores
from knnie.evaluation.relations import micro_f1_ids, relation_report, semeval_official_f1

__all__ = ["end_to_end_scores", "micro_f1_ids", "relation_report", "semeval_official_f1"]
