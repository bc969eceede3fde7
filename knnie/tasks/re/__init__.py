"""Relation extraction: the PURE-style classifier with kNN memories (kNN-RE)."""

from knnie.tasks.re.model import REConfig, RelationExtractor, RelationPrediction
from knnie.tasks.re.train import TrainConfig, train

__all__ = ["REConfig", "RelationExtractor", "RelationPrediction", "TrainConfig", "train"]
