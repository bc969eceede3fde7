"""`knnie train`: fine-tune a relation classifier and save it as a model directory."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from knnie.cli.common import command, console, load_relations
from knnie.encoders import DEFAULT_ENCODER
from knnie.io import write_json
from knnie.tasks.re import RelationExtractor, TrainConfig, train


@command
def train_command(
    train_path: Path = typer.Option(..., "--train", help="Training data (any supported format)."),
    dev_path: Path = typer.Option(..., "--dev", help="Dev data: picks the best epoch."),
    out: Path = typer.Option(..., "--out", help="Model directory to write."),
    encoder: str = typer.Option(DEFAULT_ENCODER, help="Encoder name or local Hugging Face model directory."),
    epochs: int = typer.Option(3, min=1),
    batch_size: int = typer.Option(32, min=1),
    lr: float = typer.Option(5e-5, help="Encoder learning rate (the linear head uses --head-lr)."),
    head_lr: float = typer.Option(1e-3),
    seed: int = typer.Option(42),
    max_length: int = typer.Option(256, help="Sub-word limit; longer sentences are windowed around the entities."),
    negative_label: str = typer.Option(None, help="The no-relation label (default: no_relation/Other/NA if present)."),
) -> None:
    """Fine-tune a PURE-style relation classifier (typed entity markers, linear head)."""
    train_set = load_relations(train_path, "train")
    dev_set = load_relations(dev_path, "dev")
    labels = sorted({ex.label for ex in train_set + dev_set if ex.label is not None})
    types = sorted({s.type for ex in train_set for s in (ex.head, ex.tail) if s.type})
    extractor = RelationExtractor.new(labels, encoder, types, negative_label, max_length)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, head_lr=head_lr, seed=seed)
    history = train(extractor, train_set, dev_set, config, show_progress=True)
    extractor.save_pretrained(out)
    write_json(out / "training.json", {"config": asdict(config), "history": history,
                                       "train": str(train_path), "dev": str(dev_path)})
    best = max(history, key=lambda h: h.get("dev_f1", 0.0))
    console.print(f"saved {out} ({len(labels)} labels); best dev micro-F1 {best.get('dev_f1', 0):.4f} "
                  f"at epoch {best['epoch']}", highlight=False)
