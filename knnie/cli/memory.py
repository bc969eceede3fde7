"""`knnie memory build | add | remove`: encode a labelled set with a trained model and store it as a
memory; add examples to a memory (a new relation with a few examples) and remove them, without retraining."""

from __future__ import annotations

from pathlib import Path

import typer

from knnie.cli.common import build_memory, command, live_memory_commands, load_relations
from knnie.cli.options import BatchSize, Device, Fp16, Index, MemoryName
from knnie.tasks.re import RelationExtractor

app = typer.Typer(help="Build, grow and shrink the memories a model consults at prediction time.", no_args_is_help=True)


@app.command("build")
@command
def build(
    model_dir: Path = typer.Argument(..., help="A model directory from `knnie train`."),
    data: Path = typer.Option(..., help="Labelled examples to remember (training data, DS data, ...)."),
    name: MemoryName = "train",
    index: Index = "auto",
    fp16: Fp16 = False,
    batch_size: BatchSize = 64,
    device: Device = "auto",
) -> None:
    """Keys = the model's relation vectors of DATA, values = their labels."""
    extractor = RelationExtractor.from_pretrained(model_dir, memories=False, device=device)
    build_memory(extractor, model_dir, data, load_relations(data, name), name, index, fp16, batch_size,
                 "keys", "knnie tune")


live_memory_commands(app, RelationExtractor, load_relations,
                     "Labelled examples to add (labels the model never saw are fine).", "knnie memory")
