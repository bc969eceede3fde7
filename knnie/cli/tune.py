"""`knnie tune`: choose k, T, λ, kernel (and α) on dev, saved in the model directory."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from knnie.cli.common import command, load_relations, out
from knnie.tasks.re import RelationExtractor


@command
def tune_command(
    model_dir: Path = typer.Argument(..., help="A model directory with at least one memory."),
    dev: Path = typer.Option(..., help="Dev data. Never tune on test."),
    batch_size: int = typer.Option(64, min=1),
) -> None:
    """Search each memory once (k_max = 256) and score the whole grid on dev micro-F1."""
    extractor = RelationExtractor.from_pretrained(model_dir)
    report = extractor.tune(load_relations(dev, "dev"), batch_size, show_progress=True)
    extractor.save_config(model_dir)
    table = Table(title=f"dev micro-F1 (vanilla {report['vanilla_f1']:.4f})")
    for col in ("memory", "k", "T", "λ", "kernel", "kNN-RE F1", "kNN-only F1"):
        table.add_column(col)
    for name, r in report["memories"].items():
        p = r["params"]
        table.add_row(name, str(p["k"]), f"{p['temperature']:.4g}", f"{p['lam']:.1f}", p["kernel"],
                      f"{r['dev_f1']:.4f}", f"{r['knn_only_dev_f1']:.4f}")
    out.print(table)
    if "mix" in report:
        m = report["mix"]
        out.print(f"α = {m['alpha']:.1f} for p = α·p({m['memories'][0]}) + (1 − α)·p({m['memories'][1]}): "
                  f"dev F1 {m['dev_f1']:.4f}")
