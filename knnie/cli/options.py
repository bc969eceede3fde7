"""Options that several commands share, defined once: `name: Alias = default` in a signature.

Each alias carries the option's flags, checks and help; the default stays with the command
(training batches are 32 by default, inference batches 64)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from knnie.encoders.device import DEVICES
from knnie.errors import KnnieError
from knnie.memory import INDEXES
from knnie.memory.memory import check_name


def _memory_name(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return check_name(value)
    except KnnieError as e:
        raise typer.BadParameter(str(e)) from None


BatchSize = Annotated[int, typer.Option(min=1)]
Epochs = Annotated[int, typer.Option(min=1)]
HeadLr = Annotated[float, typer.Option()]
Seed = Annotated[int, typer.Option()]
OutDir = Annotated[Path, typer.Option("--out", help="Model directory to write.")]
Index = Annotated[str, typer.Option(help=f"FAISS index: {' | '.join(INDEXES)} (flat is exact L2; auto: flat up to "
                                             "50k keys, else HNSW, IVF above 500k; ivfpq: IVF with product-quantised "
                                             "keys, re-ranked exactly; approximate depth tuned on dev).")]
CodeSize = Annotated[int, typer.Option(min=1, help="ivfpq: bytes per key in the index (2 × this many 4-bit codes; "
                                               "the key width must divide by 2 × this).")]
Rerank = Annotated[int, typer.Option(min=0, help="ivfpq: candidates per query re-ranked by their exact distance "
                                           "from the stored keys (0: none, distances from the codes).")]
Ray = Annotated[bool, typer.Option("--ray", help="Run on Ray (pip install 'knnie[ray]'): a Ray instance started on "
                                   "this machine, or the cluster at --ray-address. Same output as without.")]
RayAddress = Annotated[str | None, typer.Option("--ray-address", help="Ray cluster to join (host:port, "
                                                "ray://host:port, or auto); implies --ray. Every node must see the "
                                                "input files at the same path.")]
Workers = Annotated[int | None, typer.Option("--workers", min=1, help="Ray workers (default: one per CPU of the Ray "
                                             "instance or cluster).")]
Shards = Annotated[int | None, typer.Option("--shards", min=1, help="Build in this many key shards (default with "
                                            "--ray or several files: one per 10,000 examples), encoded one at a "
                                            "time and assembled without holding all keys; a failed build resumes.")]
MemoryData = Annotated[str, typer.Option("--data", help="Labelled examples to remember: a file, a directory or a "
                                         "glob ('corpus/*.jsonl'); several files are built in shards.")]
Fp16 = Annotated[bool, typer.Option("--fp16", help="Store keys in half precision.")]
TunedModelDir = Annotated[Path, typer.Argument(help="A model directory with at least one memory.")]
ReportJson = Annotated[Path, typer.Option(help="Also write the full report as JSON here.")]
MemoryName = Annotated[str, typer.Option("--name", callback=_memory_name,
                                         help="Memory name (letters, digits, '_', '-'), e.g. train or ds.")]
Device = Annotated[str, typer.Option(help=f"Where the encoder runs: {' | '.join(DEVICES)} (cuda:N for GPU N; auto "
                                     "is a CUDA GPU if there is one). FAISS search stays on the CPU.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Allow --out to be a non-empty directory that is not a "
                                         "knnie model: everything in it is replaced.")]
LiveMemory = Annotated[str, typer.Option("--memory", callback=_memory_name,
                                         help="The memory that grows (made if absent; until it is tuned, it is "
                                              "searched together with the tuned memory, as one kNN).")]
Source = Annotated[str, typer.Option(help="The name the examples are kept under, to remove them later (default: "
                                          "the data file's name without its extension).")]
SourceMemory = Annotated[str | None, typer.Option("--memory", callback=_memory_name,
                                                 help="Only this memory (default: every memory holding the source).")]
