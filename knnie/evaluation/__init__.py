"""Scores for every task."""

from knnie.evaluation.relations import micro_f1_ids, relation_report, semeval_official_f1

__all__ = ["micro_f1_ids", "relation_report", "semeval_official_f1"]
