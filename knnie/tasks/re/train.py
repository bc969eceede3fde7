"""Fine-tune a relation extractor end to end, keeping the best dev checkpoint."""

from __future__ import annotations

import torch

from knnie.data.schema import RelationExample
from knnie.tasks.re.model import RelationExtractor
from knnie.tasks.training import TrainConfig, check_classes, fit, require_head, seed_everything

__all__ = ["TrainConfig", "train"]


def train(extractor: RelationExtractor, train_set: list[RelationExample], dev_set: list[RelationExample],
          config: TrainConfig = TrainConfig(), show_progress: bool = False) -> list[dict]:
    """AdamW with linear warm-up and decay, dynamic padding; after each epoch the dev
    micro-F1 decides whether this is the best checkpoint, which is restored at the end.
    Refused before any step: fewer than two training labels, or examples whose entities do
    not fit the encoder (all of them named at once). Trains on the extractor's device."""
    require_head(extractor)
    seed_everything(config.seed)
    model = extractor.model
    gold = torch.tensor(extractor.label_ids(train_set, extractor.labels)).to(extractor.device)
    dev_gold = extractor.label_ids(dev_set, extractor.labels) if dev_set else None
    check_classes({ex.label for ex in train_set}, {ex.label for ex in dev_set}, "labels", 2)
    for data in (train_set, dev_set):
        extractor.too_long(data, refuse=True)

    def loss(idx: list[int], batch: dict) -> torch.Tensor:
        _, logits = model(**batch)
        return torch.nn.functional.cross_entropy(logits, gold[idx])

    def dev_score() -> float:
        _, p = extractor.encode(dev_set)
        return float(extractor.score_fn(dev_gold)(p.argmax(-1)[None])[0])

    history = fit(model, model.encoder, model.classifier, len(train_set),
                  lambda epoch: extractor.batches(train_set, config.batch_size, shuffle=True, seed=config.seed + epoch,
                                                  buckets=config.length_buckets),
                  loss, dev_score if dev_set else None, config, show_progress)
    extractor.weights_changed()
    return history
