"""The K-shot protocol: the seeded per-relation sampler, `RelationExample.to_record` (what `knnie fewshot sample`
writes) read back, and the `sample` command with its errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from typer.testing import CliRunner

from knnie import DataError, KnnieError, read_relations
from knnie.cli.main import app
from knnie.tasks.fewshot.kshot import sample_kshot
from tests.helpers import write_lines

COUNTS = {"born in": 12, "works for": 9, "part of": 3}  # "part of" has fewer than K = 4 or 8
runner = CliRunner()


def rows() -> list[dict]:
    """Plain-format examples, each sentence distinct: COUNTS[label] of each label, interleaved."""
    out = []
    for i in range(max(COUNTS.values())):
        for label, n in COUNTS.items():
            if i < n:
                text = f"Person{i} {label} Place{i} ."
                out.append({"text": text, "head": {"start": 0, "end": len(f"Person{i}"), "type": "PER"},
                            "tail": {"start": text.index("Place"), "end": text.index(" .")}, "label": label})
    return out


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_lines(tmp_path / "train.jsonl", *rows())


def test_k_per_relation_and_short_relations_taken_whole(data: Path) -> None:
    examples = read_relations(data)
    chosen, summary = sample_kshot(examples, 4, seed=0)
    assert Counter(ex.label for ex in chosen) == {"born in": 4, "works for": 4, "part of": 3}
    assert summary.counts == {"born in": 4, "part of": 3, "works for": 4} and summary.total == 11
    assert summary.short == {"part of": 3}
    assert "fewer than K, taken whole: part of (3)" in summary.describe()
    positions = [examples.index(ex) for ex in chosen]
    assert positions == sorted(positions) and len(set(positions)) == 11  # in file order, each once


def test_seeded_nested_and_per_relation(data: Path) -> None:
    examples = read_relations(data)

    def texts(exs, label=None):
        return [ex.text for ex in exs if label is None or ex.label == label]

    assert texts(sample_kshot(examples, 4, 1)[0]) == texts(sample_kshot(examples, 4, 1)[0])
    assert {tuple(texts(sample_kshot(examples, 4, s)[0])) for s in range(5)}.__len__() > 1  # the seed matters
    small, large = texts(sample_kshot(examples, 4, 3)[0]), texts(sample_kshot(examples, 8, 3)[0])
    assert set(small) < set(large)  # nested: K = 4 is part of K = 8 with one seed
    without = [ex for ex in examples if ex.label != "born in"]  # another relation's presence changes nothing
    assert texts(sample_kshot(without, 4, 3)[0], "works for") == texts(sample_kshot(examples, 4, 3)[0], "works for")


def test_sampler_errors(data: Path, tmp_path: Path) -> None:
    examples = read_relations(data)
    for k in (0, -1, 2.5):
        with pytest.raises(KnnieError, match=f"K must be an integer ≥ 1, not {k!r}"):
            sample_kshot(examples, k, 0)
    unlabelled = write_lines(tmp_path / "u.jsonl", rows()[0], {**rows()[1], "label": None})
    with pytest.raises(DataError, match=r"u\.jsonl:2 field 'label': missing label"):
        sample_kshot(read_relations(unlabelled), 2, 0)
    with pytest.raises(DataError, match="no examples to sample from"):
        sample_kshot([], 2, 0)


def test_to_record_reads_back_equal(tmp_path: Path) -> None:
    """Text examples keep their text and offsets; token examples (OpenNRE) keep their words exactly."""
    tokens = {"token": ["crane", "arm", "11", "''", "inches"], "h": {"pos": [0, 1], "type": "THING"},
              "t": {"pos": [3, 5]}, "relation": "Component-Whole(e2,e1)", "id": "x7"}
    source = write_lines(tmp_path / "mixed.jsonl", rows()[0], tokens)
    original = read_relations(source)
    again = read_relations(write_lines(tmp_path / "again.jsonl", *(ex.to_record() for ex in original)))
    for a, b in zip(original, again, strict=True):
        assert (a.tokens, a.head, a.tail, a.label, a.text, a.char_offsets, a.meta) == \
               (b.tokens, b.head, b.tail, b.label, b.text, b.char_offsets, b.meta)
    assert again[1].tokens == ["crane", "arm", "11", "''", "inches"] and again[1].head.type == "THING"
    assert again[0].text == "Person0 born in Place0 ." and again[0].head.type == "PER"


def sample(*args: str | Path) -> object:
    return runner.invoke(app, ["fewshot", "sample", *map(str, args)])


def test_sample_command_round_trip(data: Path, tmp_path: Path) -> None:
    out, again = tmp_path / "k.jsonl", tmp_path / "k2.jsonl"
    result = sample("--data", data, "--k", "4", "--seed", "5", "--out", out)
    assert result.exit_code == 0, result.output
    assert "11 examples: 4 per relation for 2 of 3 relations (seed 5); fewer than K, taken whole: part of (3)" \
        in " ".join(result.output.split())
    expected = sample_kshot(read_relations(data), 4, 5)[0]
    assert [(ex.text, ex.head, ex.tail, ex.label) for ex in read_relations(out)] == \
           [(ex.text, ex.head, ex.tail, ex.label) for ex in expected]
    assert sample("--data", data, "--k", "4", "--seed", "5", "--out", again).exit_code == 0
    assert again.read_bytes() == out.read_bytes()  # deterministic


def test_sample_command_errors(data: Path, tmp_path: Path) -> None:
    out = tmp_path / "k.jsonl"
    result = sample("--data", data, "--k", "0", "--out", out)
    assert result.exit_code == 1 and "K must be an integer ≥ 1, not 0" in result.output
    unlabelled = write_lines(tmp_path / "u.jsonl", {**rows()[0], "label": None})
    result = sample("--data", unlabelled, "--k", "2", "--out", out)
    assert result.exit_code == 1 and "u.jsonl:1 field 'label': missing label" in " ".join(result.output.split())
    assert not out.exists()
