"""Zero-shot relation extraction from relation descriptions (EMMA): dual-tower recall, cross-encoder, abstain."""

from knnie.tasks.zeroshot.model import ZeroShotConfig, ZeroShotPrediction, ZeroShotRelationExtractor
from knnie.tasks.zeroshot.train import ZeroShotTrainConfig, hold_out, train_zeroshot

__all__ = ["ZeroShotConfig", "ZeroShotPrediction", "ZeroShotRelationExtractor", "ZeroShotTrainConfig", "hold_out",
           "train_zeroshot"]
