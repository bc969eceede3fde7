"""`knnie tune`: choose k, T, λ, kernel (and α) on dev, saved in the model directory."""

from __future__ import annotations

from pathlib import Path

import typer

from knnie.cli.common import command, load_relations, print_tune_table, require_memory
from knnie.cli.options import BatchSize, TunedModelDir
from knnie.tasks.re import RelationExtractor


@command
def tune_command(
    model_dir: TunedModelDir,
    dev: Path = typer.Option(..., help="Dev data. Never tune on test."),
    batch_size: BatchSize = 64,
) -> None:
    """Search each memory once (k_max = 256) and score the whole grid on dev micro-F1."""
    extractor = RelationExtractor.from_pretrained(model_dir)
    require_memory(extractor, model_dir, "knnie memory build")
    report = extractor.tune(load_relations(dev, "dev"), batch_size, show_progress=True)
    extractor.save_config(model_dir)
    print_tune_table(report, "micro-F1", "knn_re")
