"""Named-entity recognition: a token classifier with a memory of training words (kNN-NER)."""

from knnie.tasks.ner.model import EntityRecognizer, NERConfig, NERPrediction, tag_set
from knnie.tasks.ner.train import train_ner

__all__ = ["EntityRecognizer", "NERConfig", "NERPrediction", "tag_set", "train_ner"]
