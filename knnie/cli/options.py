"""Options that several commands share, defined once: `name: Alias = default` in a signature.

Each alias carries the option's flags, checks and help; the default stays with the command
(training batches are 32 by default, inference batches 64)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from knnie.memory import INDEXES

BatchSize = Annotated[int, typer.Option(min=1)]
Epochs = Annotated[int, typer.Option(min=1)]
HeadLr = Annotated[float, typer.Option()]
Seed = Annotated[int, typer.Option()]
OutDir = Annotated[Path, typer.Option("--out", help="Model directory to write.")]
Index = Annotated[str, typer.Option(help=f"FAISS index: {' | '.join(INDEXES)} (flat is exact L2; auto: flat up to "
                                             "50k keys, else HNSW, IVF above 500k; approximate depth tuned on dev).")]
Fp16 = Annotated[bool, typer.Option("--fp16", help="Store keys in half precision.")]
TunedModelDir = Annotated[Path, typer.Argument(help="A model directory with at least one memory.")]
ReportJson = Annotated[Path, typer.Option(help="Also write the full report as JSON here.")]
