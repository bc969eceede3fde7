"""Relation descriptions for zero-shot RE: every format gives the same RelationTypes; bad input
names the file and the entry (line, record or key)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from knnie import DataError, RelationType, read_relation_types, read_relations
from tests.helpers import write_lines

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
ZEROSHOT = SHARED / "zeroshot"


def write_json(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value, indent=1), encoding="utf-8")
    return path


def summary(relations: list[RelationType]) -> list[tuple[str, str, str]]:
    return [(r.id, r.name, r.description) for r in relations]


# -- each format ---------------------------------------------------------------------------
def test_knnie_json_list_name_defaults_to_the_id(tmp_path):
    path = write_json(tmp_path / "relations.json", [
        {"id": "P17", "name": "country", "description": "sovereign state of this item"},
        {"id": "founded by", "description": "founder or co-founder of this organisation"},
    ])
    country, founded = read_relation_types(path)
    assert summary([country, founded]) == [("P17", "country", "sovereign state of this item"),
                                           ("founded by", "founded by", "founder or co-founder of this organisation")]
    assert country.text == "country: sovereign state of this item"
    assert country.source == f"{path}:record 0" and founded.source == f"{path}:record 1"


def test_knnie_jsonl_entries_are_named_by_their_line(tmp_path):
    path = write_lines(tmp_path / "relations.jsonl", {"id": "P26", "name": "spouse", "description": "husband or wife"},
                       "",  # blank lines are skipped
                       {"id": "P25", "name": None, "description": "female parent"})
    spouse, mother = read_relation_types(path)
    assert summary([spouse, mother]) == [("P26", "spouse", "husband or wife"), ("P25", "P25", "female parent")]
    assert (spouse.source, mother.source) == (f"{path}:1", f"{path}:3")


def test_a_single_record_is_read_from_json_lines_or_an_indented_object(tmp_path):
    one = {"id": "P26", "name": "spouse", "description": "husband or wife"}
    (from_line,) = read_relation_types(write_lines(tmp_path / "one.jsonl", one))
    (from_object,) = read_relation_types(write_json(tmp_path / "one.json", one))
    assert from_line == from_object == RelationType("P26", "spouse", "husband or wife")  # `source` is not compared
    assert from_object.source == f"{tmp_path / 'one.json'}:1"


def test_fewrel_pid2name(tmp_path):
    path = write_json(tmp_path / "pid2name.json", {"P17": ["country", "sovereign state of this item"],
                                                   "P25": ["mother", "female parent of the subject"]})
    relations = read_relation_types(path)
    assert summary(relations) == [("P17", "country", "sovereign state of this item"),
                                  ("P25", "mother", "female parent of the subject")]
    assert relations[1].source == f"{path}:key 'P25'"


def test_rematching_strings_split_at_the_first_is(tmp_path):
    path = write_json(tmp_path / "fewrel_relation_description.json", {
        "P27": "country of citizenship is the object is a country that recognizes the subject as its citizen",
        "P99": "a relation with no name in its text",
    })
    assert summary(read_relation_types(path)) == [
        ("P27", "country of citizenship", "the object is a country that recognizes the subject as its citizen"),
        ("P99", "P99", "a relation with no name in its text"),
    ]


def test_rematching_processed_tokens_are_joined(tmp_path):
    path = write_json(tmp_path / "relation_description_processed.json", [
        {"relation": "P17", "description": ["country", "is", "sovereign", "state", "of", "this", "item"],
         "h": ["item"], "t": ["country"], "head_pos": [6], "tail_pos": [0]},
    ])
    (country,) = read_relation_types(path)
    assert (country.id, country.name, country.description) == ("P17", "country", "sovereign state of this item")
    assert country.source == f"{path}:record 0"


@pytest.mark.skipif(not ZEROSHOT.is_dir(), reason="../shared/data absent")
@pytest.mark.parametrize(("path", "count"), [
    ("fewrel/pid2name.json", 744),
    ("zeroshot/fewrel/relation_description/fewrel_relation_description.json", 80),
    ("zeroshot/fewrel/relation_description/relation_description_processed.json", 80),
    ("zeroshot/fewrel/relation_description/relation_description_addsynonym_processed.json", 80),
    ("zeroshot/wikizsl/relation_description/wikizsl_relation_description.json", 113),
    ("zeroshot/wikizsl/relation_description/relation_description_processed.json", 113),
    ("zeroshot/wikizsl/relation_description/relation_description_addsynonym_processed.json", 113),
])
def test_the_shared_files(path, count):
    relations = {r.id: r for r in read_relation_types(SHARED / path)}
    assert len(relations) == count
    assert relations["P17"].name == "country" and relations["P17"].description.startswith("sovereign state")


@pytest.mark.skipif(not ZEROSHOT.is_dir(), reason="../shared/data absent")
def test_the_shared_fewrel_descriptions_cover_the_rematching_splits():
    split = json.loads((ZEROSHOT / "rel2id/fewrel_rel2id/fewrel_rel2id_5_ori.json").read_text())
    ids = {r.id for r in read_relation_types(ZEROSHOT / "fewrel/relation_description/fewrel_relation_description.json")}
    assert ids == {pid for part in split.values() for pid in part}


# -- bad input: the message names the file and the entry -----------------------------------------
OWN = {"id": "P1", "name": "one", "description": "the first"}
KNOWN = "not a relation description file: expected knnie's JSON list or JSON lines"


@pytest.mark.parametrize(("name", "lines", "message"), [
    ("r.json", [json.dumps([OWN, {**OWN, "id": ""}])], "r.json:record 1 field 'id': is empty"),
    ("r.jsonl", [OWN, {"description": "no id"}], "r.jsonl:2 field 'id': missing"),
    ("r.jsonl", [OWN, {**OWN, "id": "P2"}, OWN], "r.jsonl:3 field 'id': duplicate id 'P1' (first at line 1)"),
    ("r.json", ['{"P1": ["one", "the first"],', '"P2": ["two", "the second"],', '"P1": ["one", "again"]}'],
     "r.json:key 'P1' field 'id': duplicate id 'P1' (entries 0 and 2 of the object)"),
    ("r.json", [json.dumps([{"relation": "P1", "description": ["a"]}, {"relation": "P1", "description": ["b"]}])],
     "r.json:record 1 field 'id': duplicate id 'P1' (first at record 0)"),
    ("r.jsonl", [{**OWN, "description": " \t"}], "r.jsonl:1 field 'description': is empty"),
    ("r.json", [json.dumps({"P1": "one is the first", "P2": "two is "})],
     "r.json:key 'P2' field 'description': is empty"),
    ("r.json", [json.dumps({"P1": ["one", "the first"], "": ["none", "no id"]})],
     "r.json:key '' field 'id': is empty"),
    ("r.jsonl", [{**OWN, "id": 17}], "r.jsonl:1 field 'id': needs a string, found 17"),
    ("r.jsonl", [{**OWN, "name": ["one"]}], "r.jsonl:1 field 'name': needs a string, found [\"one\"]"),
    ("r.json", [json.dumps({"P1": ["one", "the first"], "P2": ["two", 2]})],
     "r.json:key 'P2' field 'description': needs a string, found 2"),
    ("r.json", [json.dumps({"P1": ["one", "the first"], "P2": ["two"]})],
     "r.json:key 'P2': needs [name, description] as in FewRel's pid2name.json, found [\"two\"]"),
    ("r.json", [json.dumps({"P1": "one is the first", "P2": ["two", "the second"]})], f"r.json: {KNOWN}"),
    ("r.json", [json.dumps([{"relation": "P1", "description": "one is the first"}])],
     "r.json:record 0 field 'description': needs a list of words"),
    ("r.json", [json.dumps([{"relation": "P1", "description": ["one"]}, "P2"])],
     "r.json:record 1: needs a JSON object, found \"P2\""),
    ("r.jsonl", [{**OWN, "desc": "typo"}], "r.jsonl:1: unknown key(s) desc: a relation has only id, name, description"),
    ("r.json", [json.dumps({"P1": [{"tokens": ["a", "b"], "h": ["a", "Q1", [[0]]], "t": ["b", "Q2", [[1]]]}]})],
     f"r.json: {KNOWN}"),  # a FewRel instance file
    ("r.jsonl", [{"token": ["a", "b"], "h": {"pos": [0, 1]}, "t": {"pos": [1, 2]}, "relation": "r"}],
     f"r.jsonl: {KNOWN}"),  # an OpenNRE example file
    ("r.json", ["42"], f"r.json: {KNOWN}"),
    ("r.json", ["", "  "], "r.json: file is empty"),
    ("r.json", ["[]"], "r.json: no relations in the file"),
    ("r.json", ["{}"], "r.json: no relations in the file"),
    ("r.json", ["[", json.dumps(OWN) + ",", '{"id": "P2",}', "]"], "r.json:3: malformed JSON"),
    ("r.jsonl", [OWN, '{"id": "P2", "description": "two"', OWN], "r.jsonl:2: malformed JSON"),
], ids=["empty-id", "missing-id", "duplicate-line", "duplicate-key", "duplicate-record", "blank-description",
        "nothing-after-is", "empty-key", "id-number", "name-list", "pid2name-description", "pid2name-short",
        "mixed-values", "processed-string", "record-not-object", "unknown-key", "fewrel-instances",
        "opennre-examples", "number", "empty", "empty-list", "empty-object", "broken-json", "broken-line"])
def test_bad_input_names_file_and_entry(tmp_path, name, lines, message):
    path = write_lines(tmp_path / name, *lines)
    with pytest.raises(DataError) as err:
        read_relation_types(path)
    assert str(err.value).startswith(str(tmp_path / message))


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"absent\.json: file not found"):
        read_relation_types(tmp_path / "absent.json")


# -- the shipped zero-shot sample -------------------------------------------------------------------
def test_the_shipped_sample_has_seen_held_out_and_unseen_relations():
    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    splits = {name: read_relations(sample / "zeroshot" / f"{name}.jsonl") for name in ("train", "dev", "test")}
    counts = {name: Counter(ex.label for ex in examples) for name, examples in splits.items()}
    assert {name: (len(c), set(c.values())) for name, c in counts.items()} == {
        "train": (8, {30}), "dev": (3, {15}), "test": (5, {15})}
    train, dev, test = (set(c) for c in counts.values())
    assert not (train & dev or train & test or dev & test)
    relations = read_relation_types(sample / "zeroshot" / "relations.json")
    assert {r.id for r in relations} == train | dev | test and len(relations) == 16
    texts = [ex.text for examples in splits.values() for ex in examples]
    fewrel8 = {ex.text for path in (sample / "fewrel8").glob("*.jsonl") for ex in read_relations(path)}
    assert len(fewrel8) == 720 and len(set(texts)) == len(texts) == 360 and not fewrel8 & set(texts)
