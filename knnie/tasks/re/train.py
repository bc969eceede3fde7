"""Fine-tune a relation extractor end to end, keeping the best dev checkpoint."""

from __future__ import annotations

import copy
import logging
import random
from dataclasses import dataclass

import numpy as np
import torch

from knnie.data.schema import RelationExample
from knnie.progress import track
from knnie.tasks.re.model import RelationExtractor

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of steps
    seed: int = 42
    max_grad_norm: float = 1.0


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(extractor: RelationExtractor, train_set: list[RelationExample], dev_set: list[RelationExample],
          config: TrainConfig = TrainConfig(), show_progress: bool = False) -> list[dict]:
    """AdamW with linear warm-up and decay, dynamic padding; after each epoch the dev
    micro-F1 decides whether this is the best checkpoint, which is restored at the end."""
    seed_everything(config.seed)
    model = extractor.model
    gold = torch.tensor(extractor.label_ids(train_set))
    dev_gold = extractor.label_ids(dev_set) if dev_set else None
    no_decay = ("bias", "LayerNorm.weight", "layer_norm")
    groups = [
        {"params": [p for n, p in model.encoder.named_parameters() if not n.endswith(no_decay)],
         "weight_decay": config.weight_decay, "lr": config.lr},
        {"params": [p for n, p in model.encoder.named_parameters() if n.endswith(no_decay)],
         "weight_decay": 0.0, "lr": config.lr},
        {"params": list(model.classifier.parameters()), "weight_decay": 0.0, "lr": config.head_lr},
    ]
    optimizer = torch.optim.AdamW(groups)
    steps = config.epochs * ((len(train_set) + config.batch_size - 1) // config.batch_size)
    warm = max(1, int(config.warmup * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    history, best_f1, best_state = [], -1.0, None
    for epoch in range(config.epochs):
        model.train()
        batches = extractor.batches(train_set, config.batch_size, shuffle=True, seed=config.seed + epoch)
        total = 0.0
        for idx, batch in track(batches, f"epoch {epoch + 1}/{config.epochs}", len(batches), show_progress):
            _, logits = model(**batch)
            loss = torch.nn.functional.cross_entropy(logits, gold[idx])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            schedule.step()
            total += loss.item() * len(idx)
        record = {"epoch": epoch + 1, "train_loss": total / len(train_set)}
        if dev_set:
            _, p = extractor.encode(dev_set)
            record["dev_f1"] = float(extractor.score_fn(dev_gold)(p.argmax(-1)[None])[0])
            if record["dev_f1"] > best_f1:
                best_f1, best_state = record["dev_f1"], copy.deepcopy(model.state_dict())
        log.info("epoch %s", record)
        history.append(record)
    if best_state is not None:
        model.load_state_dict(best_state)
    extractor.weights_changed()
    return history
