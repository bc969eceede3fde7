"""Mutated input files of every format (relations, tagged sentences, raw sentences, KB triples):
each reader either reads them or raises a KnnieError, never anything else (no raw TypeError,
UnicodeDecodeError, AttributeError ...), and what it reads keeps its character offsets exact."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from knnie import (
    Document,
    KnnieError,
    RelationExample,
    TaggedSentence,
    read_documents,
    read_relations,
    read_sentences,
    read_tagged,
)
from knnie.distant import read_aliases, read_triples

TOKENS = ["Marie", "Curie", "was", "born", "in", "Warsaw", ",", "Poland", "."]
TEXT = "Marie Curie was born in Warsaw, Poland."


def jsonl(*records: Any) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


SEEDS: dict[str, str] = {  # a small valid file of every format, by file name (the suffix matters)
    "plain.jsonl": jsonl(
        {"text": TEXT, "head": {"start": 0, "end": 11, "type": "PER"}, "tail": {"start": 24, "end": 30}, "label": "b"},
        {"text": "Cafe\u0301 👩‍👩‍👧 in 🇫🇷.", "head": {"start": 0, "end": 5}, "tail": {"start": 15, "end": 17}}),
    "opennre.txt": jsonl({"token": TOKENS, "h": {"name": "x", "pos": [0, 2], "type": "PER"},
                          "t": {"name": "y", "pos": [5, 6]}, "relation": "born in"}),
    "fewrel.json": json.dumps({"P19": [{"tokens": TOKENS, "h": ["x", "Q1", [[0, 1]]], "t": ["y", "Q2", [[5]]]}],
                               "P17": [{"tokens": TOKENS, "h": ["y", "Q2", [[5]]], "t": ["z", "Q3", [[7]]]}]}),
    "dygie.json": jsonl({"doc_key": "d", "sentences": [["We", "use", "BERT", "for", "NER", "."], ["A", "CRF", "."]],
                         "ner": [[[2, 2, "Method"], [4, 4, "Task"]], [[7, 7, "Method"]]],
                         "relations": [[[2, 2, 4, 4, "USED-FOR"]], []]}),
    "tacred.jsonl": jsonl({"text": TEXT, "subj_start": 0, "subj_end": 11, "obj_start": 24, "obj_end": 30,
                           "subj_type": "PERSON", "obj_type": "CITY", "relation": "per:city_of_birth"}),
    "tacred.json": json.dumps([{"token": TOKENS, "subj_start": 0, "subj_end": 1, "obj_start": 5, "obj_end": 5,
                                "subj_type": "PERSON", "relation": "per:city_of_birth"}]),
    "conll.txt": "-DOCSTART- -X- O\n\nEU NNP B-ORG\nrejects VBZ O\n\nNew NNP B-LOC\nYork NNP E-LOC\nis VBZ S-X\n",
    "tagged.jsonl": jsonl({"tokens": ["Ada", "smiled"], "tags": ["B-PER", "O"]},
                          {"tokens": ["in", "Paris"], "tags": ["O", "S-LOC"]}),
    "sentences.txt": "Ada left Paris.\n\nCafe\u0301 👩‍👩‍👧 🇫🇷 नमस्ते दुनिया\n北京欢迎你\n",
    "sentences.jsonl": jsonl({"text": "Ada left Paris."}, {"tokens": ["北", "京"]}),
    "kb.tsv": "# KB\nMarie Curie\tborn in\tWarsaw\tQ7186\tQ270\nWarsaw\tcountry\tPoland\n",
}
KEYS = sorted({"text", "head", "tail", "start", "end", "type", "label", "token", "tokens", "h", "t", "pos",
               "relation", "sentences", "ner", "relations", "subj_start", "subj_end", "obj_start", "obj_end",
               "subj_type", "obj_type", "tags"})
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 40) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=3), inner,
                                                                max_size=3),
    max_leaves=6,
)
SPECIAL_BYTES = [b"\xff", b"\xfe", b"\xc3", b"\x80", b"\xed\xa0\x80", b"\xef\xbb\xbf", "\u0301".encode(),
                 "\u200d".encode(), "\u2028".encode(), "🇫".encode(), b"\r", b"\n", b"\t", b" ", b"{", b"}", b"[",
                 b"]", b'"', b",", b":", b"0", b"-"]


@st.composite
def mutated_bytes(draw: st.DrawFn, seed: bytes) -> bytes:
    """The seed with a few byte flips, insertions (non-UTF-8 bytes, BOMs, marks, JSON syntax), deletions,
    or a truncation."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "bom"]))
        if op == "flip" and pos < len(data):
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(SPECIAL_BYTES) | st.binary(min_size=1, max_size=3))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
        elif op == "bom":
            data[:0] = b"\xef\xbb\xbf"
    return bytes(data)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and indices) into a JSON value, the value itself included."""
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    return [prefix, *(p for k, v in children for p in _paths(v, (*prefix, k)))]


def _replaced(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replaced(value[path[0]], path[1:], new)
    return copy


@st.composite
def mutated_json(draw: st.DrawFn, seed: str) -> bytes:
    """The seed with one JSON value (of one line, for JSONL) replaced by a value of any type."""
    lines = seed.splitlines()
    i = draw(st.integers(0, len(lines) - 1))
    value = json.loads(lines[i])
    path = draw(st.sampled_from(_paths(value)))
    lines[i] = json.dumps(_replaced(value, path, draw(JSON_VALUES)), ensure_ascii=False)
    return ("\n".join(lines) + "\n").encode()


def _read_everything(path: Path) -> None:
    """Every reader on the file: each reads it or raises a KnnieError; offsets it keeps are exact."""
    readers: list[Callable[[Path], Any]] = [read_relations, read_tagged, read_sentences, read_triples, read_aliases,
                                            lambda p: read_sentences(p, chars=True), read_documents]
    for read in readers:
        try:
            items = read(path)
        except KnnieError:
            continue
        for item in items:
            _assert_consistent(item)


def _assert_consistent(item: Any) -> None:
    """What a reader returns is what the tasks expect: strings where strings go, spans inside the
    sentence, character offsets that slice out the tokens."""
    if isinstance(item, RelationExample):
        assert all(isinstance(t, str) for t in item.tokens) and isinstance(item.label, str | None)
        for span in (item.head, item.tail):
            assert 0 <= span.start < span.end <= len(item.tokens) and isinstance(span.type, str | None)
    if isinstance(item, TaggedSentence):
        assert item.tokens and all(isinstance(t, str) for t in item.tokens)
        assert item.tags is None or len(item.tags) == len(item.tokens)
    if isinstance(item, Document):
        assert all(isinstance(t, str) for t in item.tokens)
        for span in item.entities:
            assert 0 <= span.start < span.end <= len(item.tokens) and isinstance(span.type, str | None)
        assert all(r.head in item.entities and r.tail in item.entities for r in item.relations or ())
        for example in item.relation_examples():
            _assert_consistent(example)
    if getattr(item, "char_offsets", None) is not None:
        assert [item.text[a:b] for a, b in item.char_offsets] == item.tokens


FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


@pytest.mark.parametrize("name", SEEDS)
@FUZZ
@given(data=st.data())
def test_mutated_bytes_read_or_raise_knnie_error(workdir: Path, name: str, data: st.DataObject) -> None:
    path = workdir / name
    path.write_bytes(data.draw(mutated_bytes(SEEDS[name].encode())))
    _read_everything(path)


@pytest.mark.parametrize("name", [n for n in SEEDS if n.endswith((".json", ".jsonl")) or n == "opennre.txt"])
@FUZZ
@given(data=st.data())
def test_json_values_of_any_type_read_or_raise_knnie_error(workdir: Path, name: str, data: st.DataObject) -> None:
    path = workdir / name
    path.write_bytes(data.draw(mutated_json(SEEDS[name])))
    _read_everything(path)


@pytest.mark.parametrize("name", SEEDS)
def test_seeds_are_valid(workdir: Path, name: str) -> None:
    """The fuzzing starts from files its format's reader reads (so mutations probe real parsing)."""
    path = workdir / name
    path.write_text(SEEDS[name], encoding="utf-8")
    reader = read_tagged if name.startswith(("conll", "tagged")) else (
        read_sentences if name.startswith("sentences") else read_triples if name == "kb.tsv" else read_relations)
    assert reader(path)
