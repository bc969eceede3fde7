"""Train the zero-shot extractor jointly: InfoNCE for the dual-tower recall, and the cross-encoder
over recall's hardest wrong relations; then calibrate abstaining on held-out seen relations.

Each step encodes the batch's instances and the descriptions of a set of relations (those of the
batch and random others, `relations_per_step` in all, so no relation is its own negative); the
recall loss is cross-entropy over cos / τ. For the cross-encoder each instance gets its relation
and the top k − 1 wrong ones by recall, in random order; with probability `none_rate` its own
relation is left out (the top k wrong ones instead) and the right answer is "none of these", the
fixed score 0, which teaches the cross-encoder absolute scores to abstain with.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from knnie.data.descriptions import RelationType
from knnie.data.schema import RelationExample
from knnie.errors import KnnieError
from knnie.tasks.training import TrainConfig, check_classes, fit, seed_everything
from knnie.tasks.zeroshot.model import CALIBRATION_RELATIONS, ZeroShotRelationExtractor, pair_ids

log = logging.getLogger(__name__)


@dataclass
class ZeroShotTrainConfig(TrainConfig):
    """TrainConfig plus the zero-shot objective's settings."""

    relations_per_step: int = 16  # descriptions each step's InfoNCE ranks an instance's relation among
    none_rate: float = 0.25  # share of instances trained with their relation left out of the candidates

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.relations_per_step, int) or self.relations_per_step < 2:
            raise KnnieError(f"relations_per_step must be an integer ≥ 2, not {self.relations_per_step!r}")
        if not isinstance(self.none_rate, int | float) or not 0 <= self.none_rate < 1:
            raise KnnieError(f"none_rate must be in [0, 1), not {self.none_rate!r}")


def train_zeroshot(model: ZeroShotRelationExtractor, train: list[RelationExample], relations: list[RelationType],
                   dev: list[RelationExample] = (), dev_relations: list[RelationType] = (),
                   config: ZeroShotTrainConfig = ZeroShotTrainConfig(), show_progress: bool = False) -> list[dict]:
    """Train on `train` (labels: ids of `relations`); with `dev` (instances of held-out relations
    `dev_relations`, none of them trained on) the best epoch by dev macro-F1 is kept and, when they
    are `CALIBRATION_RELATIONS` or more, the abstain threshold is calibrated on them."""
    seed_everything(config.seed)
    check_classes({ex.label for ex in train}, set(), "relations", 2)
    gold = model.gold_ids(train, relations)
    overlap = {r.id for r in relations} & {r.id for r in dev_relations}
    if dev and overlap:
        raise KnnieError(f"dev relations must be held out from training; {', '.join(sorted(overlap))} are in both")
    dev_gold = model.gold_ids(list(dev), list(dev_relations)) if dev else None
    calibrate = len(dev_relations) >= CALIBRATION_RELATIONS
    if dev and not calibrate:
        log.warning("dev has %d relations, fewer than the %d calibrating abstain needs: the abstain threshold "
                    "stays uncalibrated", len(dev_relations), CALIBRATION_RELATIONS)
    used = sorted(set(gold.tolist()))
    module, k = model.module, model.config.top_k
    units = module.instance.prepare(train)[0]
    described = model.tokenizer([r.text for r in relations], truncation=True, max_length=model.config.max_length)
    rng = random.Random(config.seed)

    def loss(idx: list[int], batch: dict) -> torch.Tensor:
        queries = module.instance(**batch)
        own = sorted({int(gold[i]) for i in idx})
        others = [j for j in used if j not in own]
        chosen = own + rng.sample(others, min(len(others), max(0, config.relations_per_step - len(own))))
        desc = model.tokenizer.pad({"input_ids": [described["input_ids"][j] for j in chosen]}, return_tensors="pt")
        keys = module.describe(desc["input_ids"].to(model.device), desc["attention_mask"].to(model.device))
        where = {j: c for c, j in enumerate(chosen)}
        target = torch.tensor([where[int(gold[i])] for i in idx], device=model.device)
        recall_loss, cos = info_nce(queries, keys, target, model.config.temperature)
        pairs, heads, tails, labels = [], [], [], []
        ranked = cos.detach().masked_fill(F.one_hot(target, len(chosen)).bool(), -2.0).argsort(1, descending=True)
        width = min(k, len(chosen) - 1)
        for r, i in enumerate(idx):
            wrong = [chosen[c] for c in ranked[r, :width].tolist()]
            leave_out = rng.random() < config.none_rate
            cands = wrong if leave_out else [int(gold[i]), *wrong[: width - 1]]
            rng.shuffle(cands)
            labels.append(width if leave_out else cands.index(int(gold[i])))
            for j in cands:
                pairs.append(pair_ids(units.input_ids[i], described["input_ids"][j], model.config.max_length))
                heads.append(units.head_pos[i])
                tails.append(units.tail_pos[i])
        cross = model.pair_batch(pairs, heads, tails)
        logits = module.cross_logits({n: t.to(model.device) for n, t in cross.items()}).view(len(idx), width)
        logits = torch.cat([logits, logits.new_zeros(len(idx), 1)], dim=1)
        return recall_loss + F.cross_entropy(logits, torch.tensor(labels, device=model.device))

    def dev_score() -> float:
        model.weights_changed()
        s = model.scores(list(dev), list(dev_relations))
        fused = s.top[np.arange(len(dev_gold)), s.fused.argmax(1)]
        from knnie.evaluation.relations import macro_prf

        return macro_prf(dev_gold, fused, [r.id for r in dev_relations])["macro_f1"]

    history = fit(module, module.encoders, module.heads, len(train),
                  lambda epoch: module.instance.batches(units, config.batch_size, shuffle=True,
                                                        seed=config.seed + epoch, buckets=config.length_buckets),
                  loss, dev_score if dev else None, config, show_progress)
    model.weights_changed()
    if dev and calibrate:
        model.calibrate(list(dev), list(dev_relations))
    return history


def hold_out(examples: list[RelationExample], count: int, seed: int
             ) -> tuple[list[RelationExample], list[RelationExample]]:
    """Split `examples` by relation into (train, dev): the examples of `count` relations, chosen at
    random (seeded), become dev, for the best epoch and the abstain calibration when there is no
    dev set; dev is empty when that would leave fewer than 2 relations to train on."""
    ids = sorted({ex.label for ex in examples if ex.label is not None})
    if len(ids) < count + 2:
        return list(examples), []
    held = set(random.Random(seed).sample(ids, count))
    return [ex for ex in examples if ex.label not in held], [ex for ex in examples if ex.label in held]


def info_nce(queries: torch.Tensor, keys: torch.Tensor, target: torch.Tensor, temperature: float
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The recall loss: cross-entropy of softmax(cos / τ) of each query (n, d) over the keys (m, d),
    the right key of query i being `target[i]`; also the (n, m) cosines, which rank the hard
    negatives the cross-encoder trains on."""
    cos = F.normalize(queries, dim=-1) @ F.normalize(keys, dim=-1).T
    return F.cross_entropy(cos / temperature, target), cos
