"""`knnie predict`: label new examples and show the neighbours behind each decision."""

from __future__ import annotations

from pathlib import Path

import typer

from knnie.cli.common import command, console, load_relations, out
from knnie.cli.options import BatchSize
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
) -> None:
    """Writes {text, head, tail, prediction, probability, neighbours} per example."""
    extractor = RelationExtractor.from_pretrained(model_dir)
    examples = load_relations(input, "input")
    predictions = extractor.predict(examples, neighbours, batch_size, show_progress=True)
    rows = []
    for ex, p in zip(examples, predictions):
        row = {"text": ex.sentence, "head": ex.mention(ex.head), "tail": ex.mention(ex.tail),
               "prediction": p.label, "probability": round(p.probability, 6), "neighbours": [
                   {"text": n.record.get("text") or " ".join(n.record["tokens"]), "label": n.label,
                    "distance": round(n.distance, 4), "memory": n.memory} for n in p.neighbours]}
        rows.append(row)
    write_jsonl(output, rows)
    for row in rows[:show]:
        out.print(f"\n[bold]{row['text']}[/]\n  head: {row['head']}   tail: {row['tail']}\n"
                  f"  → [green]{row['prediction']}[/] (p = {row['probability']:.3f})", highlight=False)
        for n in row["neighbours"]:
            out.print(f"    d = {n['distance']:8.2f}  {n['label']:<28} {n['text'][:100]}", highlight=False,
                      markup=False)
    console.print(f"{len(rows)} predictions written to {output}", highlight=False)
