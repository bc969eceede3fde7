"""`knnie evaluate`: vanilla, kNN-only and kNN-RE side by side on labelled data."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from knnie.cli.common import METHODS, command, load_relations, out
from knnie.cli.options import BatchSize, Device, ReportJson
from knnie.cli.outputs import check_output
from knnie.io import write_json
from knnie.tasks.re import RelationExtractor


@command
def evaluate_command(
    model_dir: Path = typer.Argument(..., help="A model directory (tuned, with memories, for the kNN rows)."),
    data: Path = typer.Option(..., help="Labelled test data."),
    output: ReportJson = None,
    batch_size: BatchSize = 64,
    device: Device = "auto",
) -> None:
    """Vanilla, kNN-only and kNN-RE: micro/macro-F1, per relation, SemEval official score
    (a headless model: kNN-only alone)."""
    check_output(output)
    extractor = RelationExtractor.from_pretrained(model_dir, device=device)
    report = extractor.evaluate(load_relations(data, "test"), batch_size, show_progress=True)
    first = next(iter(report.values()))
    semeval = "semeval_official_f1" in first
    table = Table(title=f"{data}")
    for col in ("method", "micro-P", "micro-R", "micro-F1", "macro-F1", *(["SemEval official"] if semeval else [])):
        table.add_column(col)
    for method, r in report.items():
        cells = [r["micro_precision"], r["micro_recall"], r["micro_f1"], r["macro_f1"]]
        cells += [r["semeval_official_f1"]] if semeval else []
        table.add_row(METHODS[method], *(f"{100 * c:.2f}" for c in cells))
    out.print(table)
    per = Table(title="per relation F1 (support)")
    per.add_column("relation")
    per.add_column("support")
    for method in report:
        per.add_column(METHODS[method])
    for rel, r in first["per_relation"].items():
        per.add_row(rel, str(r["support"]), *(f"{100 * report[m]['per_relation'][rel]['f1']:.2f}" for m in report))
    out.print(per)
    if output:
        write_json(output, report)
