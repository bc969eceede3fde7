"""`knnie ds build --ray`: the corpus matched in parallel by Ray Data workers, written as a
one-process build writes it.

The driver cuts the corpus into parts (a whole file, or `LINES_PER_PART` lines of a .jsonl or
--one-per-line file) and keeps only their list; each worker reads its parts from disk and applies
the same `DocumentMatcher` as `build_ds`. The rows come back in corpus order and go through the
same `deduplicate`, so the output and the summary are byte for byte those of the one-process
build. On a cluster every node must see the corpus at the same path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from knnie.cluster import map_in_order, worker_count
from knnie.data.files import FilePart, input_files, read_text, split_file
from knnie.distant.builder import (
    DocumentMatcher,
    DSSummary,
    Matches,
    Triple,
    deduplicate,
    documents_in,
    read_corpus_file,
)
from knnie.errors import check_count
from knnie.progress import track

LINES_PER_PART = 2000  # a second or two of matching, enough parts for the workers to share


def plan_parts(corpus: str, summary: DSSummary, one_per_line: bool = False,
               lines: int = LINES_PER_PART) -> list[FilePart]:
    """The parts of the corpus, in order. Each file is read here once, to report and skip it as
    `iter_documents` does (counted in `summary`), then cut at line starts."""
    parts = []
    for path in input_files(corpus):
        if read_corpus_file(path, summary) is None:
            continue
        if path.suffix == ".jsonl" or one_per_line:
            parts += split_file(path, lines)
        else:
            parts.append(FilePart(str(path), 0, path.stat().st_size))
    return parts


class PartMatcher:
    """A worker: its own `DocumentMatcher`, built once, applied to each document of a part; a row
    per document (its `Matches`)."""

    def __init__(self, args: tuple, one_per_line: bool) -> None:
        self.step = DocumentMatcher(*args)
        self.one_per_line = one_per_line

    def __call__(self, item: dict[str, Any]) -> Iterator[dict[str, Any]]:
        part = FilePart(**item)
        for source, text in documents_in(Path(part.path), read_text(part), self.one_per_line, part.first_line):
            found = self.step(source, text)
            yield {"sentences": found.sentences, "ambiguous": found.ambiguous,
                   "examples": [[d.hex(), ex] for d, ex in found.examples]}


def build_ds_ray(ray: Any, triples: list[Triple], corpus: str, summary: DSSummary,
                 aliases: dict[str, list[str]] | None = None, ambiguous: str = "skip", drop_suspicious: bool = False,
                 one_per_line: bool = False, workers: int | None = None, show: bool = False,
                 lines: int = LINES_PER_PART) -> Iterator[dict]:
    """`build_ds` over `iter_documents(corpus)` on Ray (`knnie.cluster.ray_session`): the same
    examples in the same order, the same summary. `workers`: Ray workers (None: one per CPU of the
    Ray instance, and never more than it has); `show`: a progress bar over the documents."""
    if workers is not None:
        check_count(workers, 1, "--workers")
    check_count(lines, 1, "lines")
    step = DocumentMatcher(triples, aliases, ambiguous, drop_suspicious)  # options checked, names warned about once
    summary.suspicious_names = step.suspicious_names
    parts = [asdict(p) for p in plan_parts(corpus, summary, one_per_line, lines)]
    rows = map_in_order(ray, parts, PartMatcher, (step.args, one_per_line), worker_count(ray, workers),
                        "nothing was written")
    matches = (Matches(r["sentences"], r["ambiguous"], [(bytes.fromhex(d), ex) for d, ex in r["examples"]])
               for r in rows)
    yield from deduplicate(track(matches, "documents", show=show), summary)
