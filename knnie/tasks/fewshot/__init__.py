"""Few-shot relation extraction (TKRE, issue 14): a support set is a small memory; N-way K-shot episodes
are classified from it by prototypes or kNN over the support set; `pretrain_encoder` trains an encoder for it
(masked span language modelling, then span-level contrastive learning); `sample_kshot` draws the K-shot
training sets of the supervised protocol; `explain_support` and `generate_examples` grow the training signal
with an LLM (explanations, validated schema-constrained synthetic examples)."""

from knnie.tasks.fewshot.episodes import Episode, by_label, sample_episodes
from knnie.tasks.fewshot.evaluation import Accuracy, episode_accuracies, episode_memory, tune_knn
from knnie.tasks.fewshot.generate import ExampleChecker, explain_support, generate_examples, support_by_relation
from knnie.tasks.fewshot.kshot import KShotSummary, sample_kshot
from knnie.tasks.fewshot.pretrain import PretrainConfig, pretrain_encoder
from knnie.tasks.fewshot.support import (
    METHODS,
    SupportSet,
    classify,
    default_params,
    load_extractor,
    prototype_memory,
    shots_of,
    support_scale,
)

__all__ = ["METHODS", "Accuracy", "Episode", "ExampleChecker", "KShotSummary", "PretrainConfig", "SupportSet",
           "by_label", "classify", "default_params", "episode_accuracies", "episode_memory", "explain_support",
           "generate_examples", "load_extractor", "pretrain_encoder", "prototype_memory",
           "sample_episodes", "sample_kshot", "shots_of", "support_by_relation", "support_scale", "tune_knn"]
