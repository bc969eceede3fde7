"""The distant-supervision builder on a hand-written KB and three short documents."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from knnie import DataError, KnnieError, read_relations
from knnie.cli.main import app
from knnie.distant import DSSummary, Triple, build_ds, iter_documents, read_aliases, read_triples

KB = "Barack Obama\tspouse\tMichelle Obama\nHawaii\tcontains\tHonolulu\nBarack Obama\tborn in\tHonolulu\n" \
     "Barack Obama\tlived in\tHonolulu\nMarie Curie\tspouse\tPierre Curie\n"
DOCS = {
    "a.txt": "Barack Obama married Michelle Obama in 1992. Michelle Obama was born in Chicago.",
    "b.txt": "Obama was born in Honolulu, Hawaii.\n\nIn 1895 marie curie married PIERRE CURIE in Paris.",
    "c.txt": "Pierre Curie was a physicist. Honolulu is a city.",  # one entity per sentence: nothing
}


def write_corpus(root: Path) -> Path:
    """The KB, aliases and DOCS under `root` (documents in root/raw)."""
    (root / "kb.tsv").write_text(KB)
    (root / "aliases.tsv").write_text("Barack Obama\tObama\tPresident Obama\n")
    (root / "raw").mkdir()
    for name, text in DOCS.items():
        (root / "raw" / name).write_text(text)
    return root


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path)


def build(corpus: Path, ambiguous: str = "skip") -> tuple[list[dict], DSSummary]:
    summary = DSSummary()
    docs = iter_documents(str(corpus / "raw" / "*.txt"), summary)
    out = list(build_ds(read_triples(corpus / "kb.tsv"), docs, summary, read_aliases(corpus / "aliases.tsv"),
                        ambiguous))
    return out, summary


def triples_of(examples: list[dict]) -> set[tuple[str, str, str]]:
    return {(e["text"][e["head"]["start"]:e["head"]["end"]], e["label"], e["text"][e["tail"]["start"]:e["tail"]["end"]])
            for e in examples}


def test_exact_examples_skipping_ambiguous(corpus: Path) -> None:
    examples, summary = build(corpus)
    assert triples_of(examples) == {
        ("Barack Obama", "spouse", "Michelle Obama"),
        ("Hawaii", "contains", "Honolulu"),
        ("marie curie", "spouse", "PIERRE CURIE"),  # case-insensitive, original casing kept
    }
    assert summary.sentences == 6 and summary.files == 3
    assert summary.skipped_ambiguous == 1  # (Obama, Honolulu): born in / lived in
    assert summary.per_relation == {"spouse": 2, "contains": 1}


def test_ambiguous_pairs_kept_as_one_example_per_relation(corpus: Path) -> None:
    examples, summary = build(corpus, "keep")
    assert ("Obama", "born in", "Honolulu") in triples_of(examples)
    assert ("Obama", "lived in", "Honolulu") in triples_of(examples)
    assert len(examples) == 5 and summary.skipped_ambiguous == 0


def test_longest_match_wins(tmp_path: Path) -> None:
    (tmp_path / "kb.tsv").write_text("Obama\tx\tChicago\nMichelle Obama\tborn in\tChicago\n")
    (tmp_path / "d.txt").write_text("Michelle Obama was born in Chicago.")
    summary = DSSummary()
    out = list(build_ds(read_triples(tmp_path / "kb.tsv"), iter_documents(str(tmp_path / "d.txt"), summary), summary))
    assert triples_of(out) == {("Michelle Obama", "born in", "Chicago")}


def test_cli_writes_readable_examples_and_skips_non_utf8(corpus: Path) -> None:
    (corpus / "raw" / "bad.txt").write_bytes(b"\xff\xfe Barack Obama married Michelle Obama.")
    out = corpus / "ds.jsonl"
    result = CliRunner().invoke(app, ["ds", "build", "--triples", str(corpus / "kb.tsv"), "--corpus",
                                      str(corpus / "raw" / "*.txt"), "--out", str(out), "--aliases",
                                      str(corpus / "aliases.tsv")])
    assert result.exit_code == 0, result.output
    flat = "".join(result.output.split())  # rich wraps long lines
    assert "bad.txtskipped:notUTF-8" in flat
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 3 and all(r["ds"]["source"].endswith(".txt") for r in rows)
    examples = read_relations(out)  # the DS output is ordinary knnie input
    assert {ex.label for ex in examples} == {"spouse", "contains"}
    assert {ex.mention(ex.head) for ex in examples} == {"Barack Obama", "Hawaii", "marie curie"}


def test_bad_triples_and_empty_corpus(tmp_path: Path) -> None:
    bad = tmp_path / "kb.tsv"
    bad.write_text("A\tr\tB\nC\tr\n")
    with pytest.raises(DataError, match=r"kb.tsv:2 field 'tail'"):
        read_triples(bad)
    with pytest.raises(KnnieError, match="matches no file"):
        list(iter_documents(str(tmp_path / "nothing" / "*.txt"), DSSummary()))


def test_stop_word_entity_warns_or_drops(tmp_path: Path, caplog) -> None:
    (tmp_path / "kb.tsv").write_text("The\tr\tParis\nFrance\tcapital\tParis\n")
    (tmp_path / "d.txt").write_text("The capital of France is Paris.")
    for drop, expected in ((False, {("The", "r", "Paris"), ("France", "capital", "Paris")}),
                           (True, {("France", "capital", "Paris")})):
        summary = DSSummary()
        out = list(build_ds(read_triples(tmp_path / "kb.tsv"), iter_documents(str(tmp_path / "d.txt"), summary),
                            summary, drop_suspicious=drop))
        assert triples_of(out) == expected
        assert summary.suspicious_names == ["The"]
    assert "stop words or single characters" in caplog.text


def test_bom_in_triples_and_aliases_keeps_the_first_line(corpus: Path) -> None:
    for name in ("kb.tsv", "aliases.tsv"):  # as Windows Notepad saves "UTF-8"
        path = corpus / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert read_triples(corpus / "kb.tsv")[0] == Triple("Barack Obama", "spouse", "Michelle Obama")
    assert read_aliases(corpus / "aliases.tsv") == {"Barack Obama": ["Obama", "President Obama"]}
    examples, _ = build(corpus)
    assert ("Barack Obama", "spouse", "Michelle Obama") in triples_of(examples)


def test_corpus_directory_reads_every_file_under_it(corpus: Path) -> None:
    raw = corpus / "raw"
    (raw / "more").mkdir()
    (raw / "more" / "d.txt").write_text("Marie Curie married Pierre Curie.")
    (raw / ".hidden.txt").write_text("Barack Obama married Michelle Obama.")  # editors' and tools' files
    (raw / ".git").mkdir()
    (raw / ".git" / "x.txt").write_text("Barack Obama married Michelle Obama.")
    summary = DSSummary()
    sources = [source for source, _ in iter_documents(str(raw), summary)]
    assert sources == [str(raw / n) for n in ("a.txt", "b.txt", "c.txt", "more/d.txt")]  # sorted, recursive
    out = corpus / "ds.jsonl"
    result = CliRunner().invoke(app, ["ds", "build", "--triples", str(corpus / "kb.tsv"), "--corpus", str(raw),
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "from 7 sentences in 4 files" in " ".join(result.output.split())
    assert {r["ds"]["source"] for r in map(json.loads, out.read_text().splitlines())} == {
        str(raw / "a.txt"), str(raw / "b.txt"), str(raw / "more" / "d.txt")}


def test_non_utf8_corpus_file_is_skipped_with_its_line_and_jsonl_text_must_be_a_string(corpus: Path) -> None:
    (corpus / "raw" / "bad.txt").write_bytes(b"Barack Obama\nmarried \xe9 Michelle Obama.")
    summary = DSSummary()
    assert len(list(iter_documents(str(corpus / "raw" / "*.txt"), summary))) == 3
    assert summary.skipped_files == {str(corpus / "raw" / "bad.txt"): "not UTF-8 (byte 0xe9 at line 2)"}
    (corpus / "docs.jsonl").write_text('{"text": "Fine."}\n{"text": 42}\n')
    with pytest.raises(DataError, match=r"docs\.jsonl:2 field 'text': expected a JSON object with 'text'"):
        list(iter_documents(str(corpus / "docs.jsonl"), DSSummary()))


def test_windows_line_ends_still_separate_paragraphs(tmp_path: Path) -> None:
    (tmp_path / "kb.tsv").write_text(KB)
    for end in (b"\n", b"\r\n", b"\r"):  # a heading and the next paragraph are two sentences
        (tmp_path / "d.txt").write_bytes(end.join([b"Barack Obama", b"", b"Michelle Obama spoke."]))
        summary = DSSummary()
        out = list(build_ds(read_triples(tmp_path / "kb.tsv"), iter_documents(str(tmp_path / "d.txt"), summary),
                            summary))
        assert (out, summary.sentences) == ([], 2)


def test_cli_ray_address_that_nothing_answers_on_fails_at_once_and_workers_need_ray(corpus: Path) -> None:
    out = corpus / "ds.jsonl"
    started = time.monotonic()
    result = CliRunner().invoke(app, ["ds", "build", "--triples", str(corpus / "kb.tsv"), "--corpus",
                                      str(corpus / "raw"), "--out", str(out), "--ray-address", "127.0.0.1:9"])
    assert result.exit_code == 1 and time.monotonic() - started < 10
    assert "cannot reach the Ray cluster at 127.0.0.1:9" in " ".join(result.output.split())
    assert not out.exists()
    result = CliRunner().invoke(app, ["ds", "build", "--triples", str(corpus / "kb.tsv"), "--corpus",
                                      str(corpus / "raw"), "--out", str(out), "--workers", "2"])
    assert result.exit_code == 1 and "--workers is for a build on Ray" in result.output and not out.exists()
