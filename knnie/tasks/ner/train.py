"""Fine-tune an entity recognizer with the shared loop, keeping the best dev checkpoint."""

from __future__ import annotations

import torch

from knnie.data.schema import TaggedSentence
from knnie.tasks.ner.model import EntityRecognizer, entity_types
from knnie.tasks.training import TrainConfig, check_classes, fit, require_head, seed_everything

IGNORE = -100  # padding words carry no loss


def train_ner(recognizer: EntityRecognizer, train_set: list[TaggedSentence], dev_set: list[TaggedSentence],
              config: TrainConfig = TrainConfig(), show_progress: bool = False) -> list[dict]:
    """Cross-entropy on each word's first sub-token; dev entity micro-F1 picks the best epoch.
    A training set with no entity is refused before any step. Trains on the recognizer's device."""
    require_head(recognizer)
    seed_everything(config.seed)
    model = recognizer.model
    gold = recognizer.tag_ids(train_set, recognizer.labels)
    check_classes(entity_types(train_set), entity_types(dev_set), "entity types", 1)
    windows = recognizer.windows(train_set)
    starts = [0]
    for s in train_set:
        starts.append(starts[-1] + len(s.tokens))
    labels = [torch.from_numpy(gold[starts[w.sentence] + w.first_word:][: len(w.word_pos)]) for w in windows]
    dev_score = recognizer.score_fn(dev_set) if dev_set else None

    def loss(idx: list[int], batch: dict) -> torch.Tensor:
        _, logits = model(**batch)
        target = torch.nn.utils.rnn.pad_sequence([labels[i] for i in idx], batch_first=True,
                                                 padding_value=IGNORE).to(logits.device)
        return torch.nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten(), ignore_index=IGNORE)

    def dev_f1() -> float:
        _, p = recognizer.encode(dev_set)
        return float(dev_score(p.argmax(-1)[None])[0])

    history = fit(model, model.encoder, model.classifier, len(windows),
                  lambda epoch: recognizer.batches(windows, config.batch_size, shuffle=True, seed=config.seed + epoch,
                                                   buckets=config.length_buckets),
                  loss, dev_f1 if dev_set else None, config, show_progress)
    recognizer.weights_changed()
    return history
