"""`knnie ds build --ray`: the same examples, in the same order, and the same summary as the
one-process build; a worker's bad input line stops the build as it would stop that one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from knnie import DataError
from knnie.cli.main import app
from knnie.distant import DSSummary, build_ds, build_ds_ray, iter_documents, read_aliases, read_triples, write_ds
from knnie.distant.parallel import plan_parts
from tests.test_distant import write_corpus

LINES = ["Barack Obama married Michelle Obama.", "Obama was born in Honolulu.", "",
         "Barack Obama married Michelle Obama.", "Marie Curie married Pierre Curie in Paris.",
         "Honolulu is in Hawaii.", "Marie Curie married Pierre Curie in Paris."]  # duplicates, an ambiguous pair


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Whole-document files, a file that is not UTF-8 and a .jsonl with a BOM and mixed line ends."""
    raw = write_corpus(tmp_path) / "raw"
    (raw / "bad.txt").write_bytes(b"Barack Obama married \xe9 Michelle Obama.")
    lines = [json.dumps({"text": t}).encode() if t else b"" for t in LINES]
    (raw / "docs.jsonl").write_bytes(b"\xef\xbb\xbf" + b"\r\n".join(lines[:4]) + b"\r" + b"\n".join(lines[4:]))
    return tmp_path


def build_local(corpus: Path) -> tuple[list[dict], DSSummary]:
    summary = DSSummary()
    docs = iter_documents(str(corpus / "raw"), summary)
    return list(build_ds(read_triples(corpus / "kb.tsv"), docs, summary, read_aliases(corpus / "aliases.tsv"))), summary


def test_ray_build_equals_the_local_build(ray: Any, corpus: Path) -> None:
    local, local_summary = build_local(corpus)
    parts = plan_parts(str(corpus / "raw"), DSSummary(), lines=2)
    assert [(Path(p.path).name, p.first_line) for p in parts] == [("a.txt", 1), ("b.txt", 1), ("c.txt", 1)] + [
        ("docs.jsonl", line) for line in (1, 4, 7)]  # every 2 non-blank lines; a lone \r ends line 4
    summary = DSSummary()
    examples = list(build_ds_ray(ray, read_triples(corpus / "kb.tsv"), str(corpus / "raw"), summary,
                                 read_aliases(corpus / "aliases.tsv"), workers=2, lines=2))
    assert examples == local and summary == local_summary
    assert summary.duplicates == 2 and summary.skipped_ambiguous == 2 and list(summary.skipped_files) == [
        str(corpus / "raw" / "bad.txt")]
    assert examples[-1]["ds"]["source"] == f"{corpus / 'raw' / 'docs.jsonl'}:6"  # lines counted across parts


def test_cli_ray_writes_the_same_bytes_and_summary(ray: Any, corpus: Path) -> None:
    outputs = []
    out = corpus / "ds.jsonl"
    for flags in ([], ["--ray", "--workers", "2"]):
        result = CliRunner().invoke(app, ["ds", "build", "--triples", str(corpus / "kb.tsv"), "--corpus",
                                          str(corpus / "raw"), "--aliases", str(corpus / "aliases.tsv"), "--out",
                                          str(out), *flags])
        assert result.exit_code == 0, result.output
        report = " ".join(result.output.split())
        assert "9/?" in report  # the progress bar counted 9 documents
        outputs.append((out.read_bytes(), report[report.index("6 DS examples"):]))
    assert outputs[0] == outputs[1]
    assert outputs[1][1].startswith("6 DS examples from 12 sentences in 4 files")


def test_bad_jsonl_line_in_a_worker_fails_the_build_and_keeps_the_previous_output(ray: Any, corpus: Path) -> None:
    docs = corpus / "raw" / "docs.jsonl"
    docs.write_bytes(docs.read_bytes() + b'\n{"text": "Obama married"\n')
    out = corpus / "ds.jsonl"
    out.write_text("previous\n")
    summary = DSSummary()
    examples = build_ds_ray(ray, read_triples(corpus / "kb.tsv"), str(corpus / "raw"), summary, workers=2,
                            lines=2)
    with pytest.raises(DataError, match=r"docs\.jsonl:8: malformed JSON \(Expecting ',' delimiter"):
        write_ds(out, examples)
    assert out.read_text() == "previous\n"
