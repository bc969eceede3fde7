"""`knnie memory build`: encode a labelled set with a trained model and store it as a memory."""

from __future__ import annotations

from pathlib import Path

import typer

from knnie.cli.common import command, console, load_relations
from knnie.memory import INDEXES
from knnie.tasks.re import RelationExtractor

app = typer.Typer(help="Build the memories a model consults at prediction time.", no_args_is_help=True)


@app.command("build")
@command
def build(
    model_dir: Path = typer.Argument(..., help="A model directory from `knnie train`."),
    data: Path = typer.Option(..., help="Labelled examples to remember (training data, DS data, ...)."),
    name: str = typer.Option("train", help="Memory name, e.g. train or ds."),
    index: str = typer.Option("flat", help=f"FAISS index: {' | '.join(INDEXES)} (flat is exact L2)."),
    fp16: bool = typer.Option(False, "--fp16", help="Store keys in half precision."),
    batch_size: int = typer.Option(64, min=1),
) -> None:
    """Keys = the model's relation vectors of DATA, values = their labels."""
    extractor = RelationExtractor.from_pretrained(model_dir, memories=False)
    memory = extractor.build_memory(load_relations(data, name), index, fp16, batch_size, show_progress=True)
    memory.save(model_dir / "memories" / name)
    console.print(f"memory '{name}': {len(memory)} keys of dim {memory.config.dim} ({index}"
                  f"{', fp16' if fp16 else ''}) saved in {model_dir / 'memories' / name}; "
                  "run `knnie tune` to choose k, T and λ", highlight=False)
