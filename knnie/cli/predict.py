"""`knnie predict`: label new examples and show the neighbours behind each decision."""

from __future__ import annotations

from pathlib import Path

import typer

from knnie.cli.common import command, console, load_relations, show_predictions
from knnie.cli.options import BatchSize, Device
from knnie.cli.outputs import check_output
from knnie.io import write_jsonl
from knnie.tasks.re import RelationExtractor


@command
def predict_command(
    model_dir: Path = typer.Argument(..., help="A model directory from `knnie train`."),
    input: Path = typer.Option(..., "--input", help="Examples to label (labels, if any, are ignored)."),
    output: Path = typer.Option(..., "--output", help="JSONL with a prediction per input example."),
    neighbours: int = typer.Option(3, min=0, help="Nearest memory entries to return with each prediction."),
    batch_size: BatchSize = 64,
    show: int = typer.Option(5, min=0, help="Print this many predictions to the terminal."),
    device: Device = "auto",
) -> None:
    """Writes {text, head: {text, start, end, type}, tail, prediction, probability, neighbours}
    per example, start and end being character offsets into text. An example whose entities do
    not fit the encoder gets prediction null and a "reason"."""
    check_output(output)
    extractor = RelationExtractor.from_pretrained(model_dir, device=device)
    examples = load_relations(input, "input")
    predictions = extractor.predict(examples, neighbours, batch_size, show_progress=True)
    rows = [p.to_row(ex) for ex, p in zip(examples, predictions)]
    write_jsonl(output, rows)
    show_predictions(rows[:show])
    unanswered = sum(p.label is None for p in predictions)
    note = f" ({unanswered} with no prediction: entities too far apart for the encoder)" if unanswered else ""
    console.print(f"{len(rows)} predictions written to {output}{note}", highlight=False)
