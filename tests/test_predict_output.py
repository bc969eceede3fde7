"""What `knnie predict` writes (issue #11): mentions as the input's own text with character
offsets into it, neighbours as their original sentences, and an explicit "no prediction" for
an example whose entities the encoder cannot hold. The model is untrained: only the form of
the output is checked."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from knnie import RelationExample, RelationExtractor, Span, example_from_text, read_relations
from knnie.cli.main import app
from knnie.tasks.base import UNTUNED
from tests.helpers import write_lines

MAX_LENGTH = 48
# text, head, tail, label: mentions whose tokens re-joined by spaces would read differently
SENTENCES = [
    ("Amélie is a 2001 French romantic comedy film directed by Jean-Pierre Jeunet.", "Amélie",
     "Jean-Pierre Jeunet", "director"),
    ("Conan O'Brien was born in Brookline, Massachusetts.", "Conan O'Brien", "Brookline", "born in"),
]
FAR_APART = " ".join(["Alice", *["filler"] * 80, "Bob"])  # no 48-sub-word window holds both


def plain(text: str, head: str, tail: str, label: str | None = None) -> dict:
    """A plain JSONL record: character offsets of the first occurrence of each mention."""
    spans = {name: {"start": text.index(m), "end": text.index(m) + len(m)} for name, m in (("head", head),
                                                                                            ("tail", tail))}
    return {"text": text, **spans, **({"label": label} if label else {})}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("predict-output")
    memory = read_relations(write_lines(d / "memory.jsonl", *(plain(*s) for s in SENTENCES)))
    extractor = RelationExtractor.new(["born in", "director"], max_length=MAX_LENGTH)
    extractor.attach_memory("train", extractor.build_memory(memory))
    extractor.save_pretrained(d / "model")
    return d / "model"


def check_span(row: dict, name: str, text: str) -> None:
    span = row[name]
    assert span["text"] == text and row["text"][span["start"] : span["end"]] == text


def test_rows_give_the_original_mentions_with_offsets_and_neighbours_as_their_sentences(model, tmp_path):
    tokens = ["Paris", "is", "the", "capital", "of", "France", "."]
    inputs = write_lines(tmp_path / "in.jsonl", *(plain(text, head, tail) for text, head, tail, _ in SENTENCES),
                         {"token": tokens, "h": {"pos": [5, 6], "type": "LOC"}, "t": {"pos": [0, 1]}},
                         plain(FAR_APART, "Alice", "Bob"))
    result = CliRunner().invoke(app, ["predict", str(model), "--input", str(inputs), "--output",
                                      str(tmp_path / "out.jsonl"), "--neighbours", "2"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 4

    for row, (text, head, tail, _) in zip(rows, SENTENCES):
        assert row["text"] == text
        check_span(row, "head", head)
        check_span(row, "tail", tail)
        assert row["prediction"] in {"born in", "director"} and 0 < row["probability"] <= 1
        # the untuned interpolation of the head's and the memory's shares of the predicted label
        assert row["probability"] == pytest.approx(UNTUNED.lam * row["p_knn"] + (1 - UNTUNED.lam) * row["p_model"])
        assert {n["text"] for n in row["neighbours"]} == {s[0] for s in SENTENCES}
        for n in row["neighbours"]:
            _, n_head, n_tail, n_label = next(s for s in SENTENCES if s[0] == n["text"])
            check_span(n, "head", n_head)
            check_span(n, "tail", n_tail)
            assert n["label"] == n_label and n["memory"] == "train" and n["distance"] >= 0

    tokens_row = rows[2]  # token input: the tokens joined by spaces, offsets into that
    assert tokens_row["text"] == "Paris is the capital of France ."
    assert tokens_row["head"] == {"text": "France", "start": 24, "end": 30, "type": "LOC"}
    check_span(tokens_row, "tail", "Paris")

    far = rows[3]
    assert far["prediction"] is None and far["probability"] is None and far["neighbours"] == []
    assert f"more than the encoder's limit of {MAX_LENGTH}" in far["reason"]
    check_span(far, "tail", "Bob")
    assert "4 predictions written" in result.output and "1 with no prediction" in " ".join(result.output.split())


def test_a_memory_record_keeps_the_original_text_and_offsets():
    text, head, tail, label = SENTENCES[1]
    ex = example_from_text(text, (0, len(head), None), (text.index(tail), text.index(tail) + len(tail), "LOC"),
                           label, source="mine.jsonl:1")
    back = RelationExample.from_dict(json.loads(json.dumps(ex.to_dict())))
    assert back == dataclasses.replace(ex, source=None)
    assert back.to_row()["head"] == {"text": "Conan O'Brien", "start": 0, "end": 13, "type": None}


def test_records_written_before_offsets_were_kept_are_still_read():
    text = "Conan O'Brien was born in Brookline."
    old = {"tokens": ["Conan", "O", "'", "Brien", "was", "born", "in", "Brookline", "."],
           "head": {"start": 0, "end": 4, "type": None}, "tail": {"start": 7, "end": 8, "type": "LOC"},
           "label": "born in", "text": text}
    row = RelationExample.from_dict(old).to_row()
    assert row["text"] == text
    assert row["head"] == {"text": "Conan O'Brien", "start": 0, "end": 13, "type": None}
    assert row["tail"] == {"text": "Brookline", "start": 26, "end": 35, "type": "LOC"}
    tokens_only = RelationExample.from_dict({k: v for k, v in old.items() if k != "text"})
    assert tokens_only.to_row()["head"] == {"text": "Conan O ' Brien", "start": 0, "end": 15, "type": None}
    assert tokens_only.head == Span(0, 4)
