"""`knnie train`: fine-tune a relation classifier and save it as a model directory."""

from __future__ import annotations

from pathlib import Path

import typer

from knnie.cli.common import command, load_relations, save_training
from knnie.cli.options import BatchSize, Device, Epochs, HeadLr, OutDir, Overwrite, Seed
from knnie.encoders import DEFAULT_ENCODER
from knnie.encoders.device import resolve_device
from knnie.tasks.model_dir import check_target
from knnie.tasks.re import RelationExtractor, TrainConfig, train
from knnie.tasks.training import seed_everything


@command
def train_command(
    train_path: Path = typer.Option(..., "--train", help="Training data (any supported format)."),
    dev_path: Path = typer.Option(..., "--dev", help="Dev data: picks the best epoch."),
    out: OutDir = ...,
    encoder: str = typer.Option(DEFAULT_ENCODER, help="Encoder name or local Hugging Face model directory."),
    epochs: Epochs = 3,
    batch_size: BatchSize = 32,
    lr: float = typer.Option(5e-5, help="Encoder learning rate (the linear head uses --head-lr)."),
    head_lr: HeadLr = 1e-3,
    seed: Seed = 42,
    max_length: int = typer.Option(256, help="Sub-word limit; longer sentences are windowed around the entities."),
    negative_label: str = typer.Option(None, help="The no-relation label (default: no_relation/Other/NA if present)."),
    overwrite: Overwrite = False,
    device: Device = "auto",
) -> None:
    """Fine-tune a PURE-style relation classifier (typed entity markers, linear head)."""
    check_target(out, overwrite)
    target = resolve_device(device)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, head_lr=head_lr, seed=seed)
    train_set = load_relations(train_path, "train")
    dev_set = load_relations(dev_path, "dev")
    labels = sorted({ex.label for ex in train_set + dev_set if ex.label is not None})
    types = sorted({s.type for ex in train_set for s in (ex.head, ex.tail) if s.type})
    seed_everything(seed)  # the new head and marker embeddings too, so --seed decides the whole run
    extractor = RelationExtractor.new(labels, encoder, types, negative_label, max_length, device=target)
    history = train(extractor, train_set, dev_set, config, show_progress=True)
    extractor.save_pretrained(out, overwrite)
    save_training(out, config, history, train_path, dev_path, f"{len(labels)} labels", "micro-F1")
