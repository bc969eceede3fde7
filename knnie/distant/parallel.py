"""`knnie ds build --ray`: the corpus matched in parallel by Ray Data workers, written as a
one-process build writes it.

The driver cuts the corpus into chunks (a whole file, or about `CHUNK_BYTES` of a .jsonl or
--one-per-line file cut at line ends) and keeps only their list; each worker reads its chunks
from disk and applies the same `DocumentMatcher` as `build_ds`. The rows come back in corpus
order and go through the same `deduplicate`, so the output and the summary are byte for byte
those of the one-process build. On a cluster every node must see the corpus at the same path.
"""

from __future__ import annotations

import codecs
import json
import logging
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knnie.cluster import ordered_data
from knnie.data.files import _unix_newlines, read_text
from knnie.distant.builder import (
    DocumentMatcher,
    DSSummary,
    Matches,
    Triple,
    corpus_files,
    deduplicate,
    documents_in,
    read_corpus_file,
)
from knnie.errors import DataError, check_count
from knnie.progress import track

CHUNK_BYTES = 1 << 18  # 256 KiB: a second or two of matching, enough chunks for the workers to share


@dataclass(frozen=True)
class Chunk:
    """A part of a corpus file that a worker reads on its own: bytes [start, end) that begin at
    line `line`, or (end -1) the whole file as one document."""

    path: str
    start: int = 0
    end: int = -1
    line: int = 1


def plan_chunks(corpus: str, summary: DSSummary, one_per_line: bool = False,
                chunk_bytes: int = CHUNK_BYTES) -> list[Chunk]:
    """The chunks of the corpus, in order. Each file is read here once, to report and skip it as
    `iter_documents` does (counted in `summary`) and to cut it at line ends, then let go."""
    chunks = []
    for path in corpus_files(corpus):
        if read_corpus_file(path, summary) is None:
            continue
        if path.suffix != ".jsonl" and not one_per_line:
            chunks.append(Chunk(str(path)))
            continue
        data = path.read_bytes()
        start, line = 0, 1
        while start < len(data):
            cut = data.find(b"\n", start + chunk_bytes - 1)
            end = len(data) if cut < 0 else cut + 1
            chunks.append(Chunk(str(path), start, end, line))
            piece = data[start:end]  # its line ends as read_text counts them: \n, \r\n and a lone \r
            line += piece.count(b"\n") + piece.count(b"\r") - piece.count(b"\r\n")
            start = end
    return chunks


def chunk_documents(chunk: Chunk, one_per_line: bool = False) -> Iterator[tuple[str, str]]:
    """(source, text) of the documents of a chunk, as `iter_documents` gives them for its file."""
    path = Path(chunk.path)
    if chunk.end < 0:
        yield from documents_in(path, read_text(path), one_per_line)
        return
    with open(path, "rb") as f:
        f.seek(chunk.start)
        data = f.read(chunk.end - chunk.start)
    if chunk.start == 0:
        data = data.removeprefix(codecs.BOM_UTF8)
    yield from documents_in(path, _unix_newlines(data.decode("utf-8")), one_per_line, chunk.line)


class _Worker:
    """A Ray Data worker: its own `DocumentMatcher`, built once, applied to each document of its
    chunks. A row is one document's `Matches` as JSON, or the `DataError` that stopped a chunk
    (Ray would hand the driver only its text)."""

    def __init__(self, args: tuple, one_per_line: bool) -> None:
        self.step = DocumentMatcher(*args)
        self.one_per_line = one_per_line

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        rows = []
        for fields in zip(batch["path"], batch["start"], batch["end"], batch["line"], strict=True):
            chunk = Chunk(str(fields[0]), *map(int, fields[1:]))
            try:
                for source, text in chunk_documents(chunk, self.one_per_line):
                    found = self.step(source, text)
                    rows.append(json.dumps({"sentences": found.sentences, "ambiguous": found.ambiguous,
                                            "examples": [[d.hex(), ex] for d, ex in found.examples]}))
            except DataError as e:
                where = {"path": None if e.path is None else str(e.path), "line": e.line, "field": e.field}
                rows.append(json.dumps({"error": {"message": e.message, **where}}))
                break
        return {"result": rows}


def ray_matches(ray: Any, chunks: list[Chunk], args: tuple, one_per_line: bool, workers: int) -> Iterator[Matches]:
    """Every document's `Matches`, in corpus order, from `workers` Ray Data workers."""
    if not chunks:
        return
    ordered_data(ray)
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # not lines per dataset run
    data = ray.data.from_items([dict(zip(("path", "start", "end", "line"), astuple(c), strict=True)) for c in chunks])
    rows = data.map_batches(_Worker, fn_constructor_args=(args, one_per_line), batch_size=1,
                            compute=ray.data.ActorPoolStrategy(size=workers))
    for row in rows.iter_rows():
        result = json.loads(row["result"])
        if "error" in result:
            raise DataError(**result["error"])
        yield Matches(result["sentences"], result["ambiguous"],
                      [(bytes.fromhex(d), ex) for d, ex in result["examples"]])


def build_ds_ray(ray: Any, triples: list[Triple], corpus: str, summary: DSSummary,
                 aliases: dict[str, list[str]] | None = None, ambiguous: str = "skip", drop_suspicious: bool = False,
                 one_per_line: bool = False, workers: int | None = None, show: bool = False,
                 chunk_bytes: int = CHUNK_BYTES) -> Iterator[dict]:
    """`build_ds` over `iter_documents(corpus)` on Ray (`knnie.cluster.ray_session`): the same
    examples in the same order, the same summary. `workers`: Ray workers (None: one per CPU of the
    Ray instance, and never more than it has); `show`: a progress bar over the documents."""
    if workers is not None:
        check_count(workers, 1, "--workers")
    check_count(chunk_bytes, 1, "chunk_bytes")
    step = DocumentMatcher(triples, aliases, ambiguous, drop_suspicious)  # options checked, names warned about once
    summary.suspicious_names = step.suspicious_names
    chunks = plan_chunks(corpus, summary, one_per_line, chunk_bytes)
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    matches = ray_matches(ray, chunks, step.args, one_per_line, min(workers or cpus, cpus))
    yield from deduplicate(track(matches, "documents", show=show), summary)
