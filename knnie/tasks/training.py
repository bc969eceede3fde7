"""The fine-tuning loop every task shares: AdamW (no decay on biases and norms, its own
learning rate for the head), linear warm-up and decay, gradient clipping, and the best
dev epoch kept. Tasks supply their batches (grouped by `knnie.encoders.batching.batch_order`), their
loss and their
dev score; the model trains where it is (its device), each batch moved there once."""

from __future__ import annotations

import copy
import logging
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from knnie.encoders.device import to_device
from knnie.errors import KnnieError
from knnie.progress import track

log = logging.getLogger(__name__)

# batches of one epoch: (example indices, tensors); the epoch number seeds the shuffle
Batches = Callable[[int], list[tuple[list[int], dict[str, Any]]]]


@dataclass
class TrainConfig:
    """How to train; a setting that would give a broken model (a NaN learning rate, no
    batches) is refused when the config is made, before any work."""

    epochs: int = 3
    batch_size: int = 32
    lr: float = 5e-5
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1  # fraction of steps
    seed: int = 42
    max_grad_norm: float = 1.0
    length_buckets: bool = True  # batches of similar lengths (see `batch_order`); False: random batches


    def __post_init__(self) -> None:
        checks = (
            ("epochs", _count(self.epochs), "an integer ≥ 1"),
            ("batch_size", _count(self.batch_size), "an integer ≥ 1"),
            ("lr", _finite(self.lr) and self.lr > 0, "a finite number > 0"),
            ("head_lr", _finite(self.head_lr) and self.head_lr > 0, "a finite number > 0"),
            ("weight_decay", _finite(self.weight_decay) and self.weight_decay >= 0, "a finite number ≥ 0"),
            ("warmup", _finite(self.warmup) and 0 <= self.warmup <= 1, "a fraction of the steps, in [0, 1]"),
            ("max_grad_norm", _finite(self.max_grad_norm) and self.max_grad_norm > 0, "a finite number > 0"),
        )
        for name, ok, want in checks:
            if not ok:
                raise KnnieError(f"training setting {name} must be {want}, not {getattr(self, name)!r}")



def _count(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool) and x >= 1


def _finite(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def check_classes(train: set[str], dev: set[str], what: str, least: int) -> None:
    """Refuse a training set with fewer than `least` classes (`what`: "labels", "entity
    types"): there is nothing to tell apart. Warn about dev classes the training set never
    shows: the model cannot learn them, they can only be wrong."""
    if len(train) < least:
        raise KnnieError(f"the training set has too few {what} to learn from: {len(train)} "
                         f"({', '.join(sorted(train)) or 'none'}), at least {least} needed")
    unseen = sorted(dev - train)
    if unseen:
        log.warning("%d dev %s never seen in training (no model can learn them): %s", len(unseen), what,
                    ", ".join(unseen))


def require_head(front: Any) -> None:
    """Refuse to train a headless model: there is no classifier to fit."""
    if not front.has_head:
        raise KnnieError("this model has no classifier head to train: a headless model predicts from its memories "
                         "alone (build one and tune it)")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def fit(model: nn.Module, encoder: nn.Module, head: nn.Module, n_examples: int, batches: Batches,
        loss_fn: Callable[[list[int], dict[str, Any]], torch.Tensor], dev_score: Callable[[], float] | None,
        config: TrainConfig, show_progress: bool = False) -> list[dict]:
    """Train `model` (whose parts are `encoder`, at config.lr, and `head`, at config.head_lr).

    After each epoch `dev_score` (if given) decides whether this is the best checkpoint;
    the best is restored at the end. Returns one record per epoch (train_loss, dev_f1)."""
    device = next(model.parameters()).device
    no_decay = ("bias", "LayerNorm.weight", "layer_norm")
    groups = [
        {"params": [p for n, p in encoder.named_parameters() if not n.endswith(no_decay)],
         "weight_decay": config.weight_decay, "lr": config.lr},
        {"params": [p for n, p in encoder.named_parameters() if n.endswith(no_decay)],
         "weight_decay": 0.0, "lr": config.lr},
        {"params": list(head.parameters()), "weight_decay": 0.0, "lr": config.head_lr},
    ]
    optimizer = torch.optim.AdamW(groups)
    steps = config.epochs * ((n_examples + config.batch_size - 1) // config.batch_size)
    warm = max(1, int(config.warmup * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm))))
    history, best_f1, best_state = [], -1.0, None
    for epoch in range(config.epochs):
        model.train()
        epoch_batches = batches(epoch)
        total = 0.0
        for step, (idx, batch) in enumerate(track(epoch_batches, f"epoch {epoch + 1}/{config.epochs}",
                                                  len(epoch_batches), show_progress)):
            loss = loss_fn(idx, to_device(batch, device))
            if not torch.isfinite(loss):
                raise KnnieError(f"the training loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}: "
                                 f"training diverged (lr {config.lr}, head_lr {config.head_lr}) and was stopped "
                                 "before anything was saved; try lower learning rates")
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.max_grad_norm)
            optimizer.step()
            schedule.step()
            total += loss.item() * len(idx)
        record = {"epoch": epoch + 1, "train_loss": total / n_examples}
        if dev_score is not None:
            record["dev_f1"] = dev_score()
            if record["dev_f1"] > best_f1:
                best_f1, best_state = record["dev_f1"], copy.deepcopy(model.state_dict())
        log.info("epoch %s", record)
        history.append(record)
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
