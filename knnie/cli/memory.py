"""`knnie memory build | add | remove`: encode a labelled set with a trained model and store it as a
memory; add examples to a memory (a new relation with a few examples) and remove them, without retraining."""

from __future__ import annotations

from pathlib import Path

import typer

from knnie.cli.common import build_memory, command, live_memory_commands, load_relations
from knnie.cli.options import (
    BatchSize,
    CodeSize,
    Device,
    Fp16,
    Index,
    MemoryData,
    MemoryName,
    Ray,
    RayAddress,
    Rerank,
    Shards,
    Workers,
)
from knnie.tasks.re import RelationExtractor

app = typer.Typer(help="Build, grow and shrink the memories a model consults at prediction time.", no_args_is_help=True)


@app.command("build")
@command
def build(
    model_dir: Path = typer.Argument(..., help="A model directory from `knnie train`."),
    data: MemoryData = ...,
    name: MemoryName = "train",
    index: Index = "auto",
    fp16: Fp16 = False,
    code_size: CodeSize = 32,
    rerank: Rerank = 64,
    batch_size: BatchSize = 64,
    device: Device = "auto",
    ray: Ray = False,
    ray_address: RayAddress = None,
    workers: Workers = None,
    shards: Shards = None,
) -> None:
    """Keys = the model's relation vectors of DATA (training data, DS data, ...), values = their labels."""
    build_memory(RelationExtractor, load_relations, model_dir, data, name, index, fp16, code_size, rerank, batch_size,
                 device, ray, ray_address, workers, shards, "keys", "knnie tune")


live_memory_commands(app, RelationExtractor, load_relations,
                     "Labelled examples to add (labels the model never saw are fine).", "knnie memory")
