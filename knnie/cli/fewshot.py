"""`knnie fewshot ...`: few-shot relation extraction (TKRE): K-shot sampling, episodes, LLM data, pre-training."""

from __future__ import annotations

from pathlib import Path

import typer

from knnie.cli.common import command, console, load_relations
from knnie.cli.options import Seed
from knnie.io import write_jsonl
from knnie.tasks.fewshot.kshot import sample_kshot

app = typer.Typer(help="Few-shot relation extraction (TKRE): relations learnt from a few labelled examples each.",
                  no_args_is_help=True)


@app.command("sample")
@command
def sample_command(
    data: Path = typer.Option(..., help="Labelled relation examples (any format `knnie train` reads)."),
    k: int = typer.Option(..., "--k", help="Examples per relation (a relation with fewer is taken whole)."),
    out: Path = typer.Option(..., help="Where to write the K-shot set (JSON lines that every command reads)."),
    seed: Seed = 0,
) -> None:
    """Sample a K-shot training set: K examples of each relation, chosen with SEED (the same seed and data give the
    same set; with one seed, a smaller K gives a subset of a larger K's set)."""
    chosen, summary = sample_kshot(load_relations(data, "data"), k, seed)
    write_jsonl(out, (ex.to_record() for ex in chosen))
    console.print(f"wrote {out}: {summary.describe()}", highlight=False)
