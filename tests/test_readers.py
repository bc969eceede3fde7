"""Every input format gives the same canonical examples; bad input names file, line and field."""

from __future__ import annotations

import json

import pytest

from knnie import NO_RELATION, DataError, Span, read_relations
from tests.helpers import write_lines

TEXT = "Marie Curie was born in Warsaw, Poland."
TOKENS = ["Marie", "Curie", "was", "born", "in", "Warsaw", ",", "Poland", "."]


def plain(head=(0, 11), tail=(24, 30), text=TEXT, **extra) -> dict:
    return {"text": text, "head": {"start": head[0], "end": head[1]},
            "tail": {"start": tail[0], "end": tail[1]}, **extra}


def summary(ex) -> tuple:
    return ex.tokens, ex.head, ex.tail, ex.label


# -- each format ---------------------------------------------------------------------------
def test_plain_jsonl_character_offsets_become_token_spans(tmp_path):
    path = write_lines(tmp_path / "plain.jsonl",
                       plain(label="place of birth", id="s1"),
                       "",  # blank lines are skipped
                       plain(head=(31, 38), tail=(24, 30)))  # "Poland" -> "Warsaw", unlabelled
    first, second = read_relations(path)

    # "Warsaw," : the entity ends right before the comma, which becomes its own token
    assert summary(first) == (TOKENS, Span(0, 2), Span(5, 6), "place of birth")
    assert first.mention(first.head) == "Marie Curie" and first.mention(first.tail) == "Warsaw"
    assert first.char_offsets[5] == (24, 30) and first.text == TEXT
    assert first.meta == {"id": "s1"}
    assert first.source == f"{path}:1"
    assert summary(second) == (TOKENS, Span(7, 8), Span(5, 6), None)
    assert second.source == f"{path}:3"


def test_plain_jsonl_entity_edges_inside_punctuation_and_words(tmp_path):
    text = "The Parisians met Acme Inc. staff."
    path = write_lines(tmp_path / "plain.jsonl",
                       {"text": text, "head": {"start": 4, "end": 9, "type": "LOC"},  # "Paris" of "Parisians"
                        "tail": {"start": 18, "end": 27, "type": "ORG"}})  # "Acme Inc." with its period
    (ex,) = read_relations(path)
    assert ex.tokens == ["The", "Paris", "ians", "met", "Acme", "Inc", ".", "staff", "."]
    assert ex.head == Span(1, 2, "LOC") and ex.tail == Span(4, 7, "ORG")


def test_opennre_jsonl(tmp_path):
    path = write_lines(tmp_path / "wiki80.txt", {
        "token": TOKENS, "h": {"name": "marie curie", "id": "Q7186", "pos": [0, 2]},
        "t": {"name": "warsaw", "id": "Q270", "pos": [5, 6]}, "relation": "place of birth"})
    (ex,) = read_relations(path)
    assert summary(ex) == (TOKENS, Span(0, 2), Span(5, 6), "place of birth")


def test_fewrel_json(tmp_path):
    data = {
        "P19": [{"tokens": TOKENS, "h": ["marie curie", "Q7186", [[0, 1]]], "t": ["warsaw", "Q270", [[5]]]}],
        "P17": [{"tokens": TOKENS, "h": ["warsaw", "Q270", [[5]]], "t": ["poland", "Q36", [[7]]]}],
    }
    (tmp_path / "fewrel.json").write_text(json.dumps(data, indent=1), encoding="utf-8")
    first, second = read_relations(tmp_path / "fewrel.json")
    assert summary(first) == (TOKENS, Span(0, 2), Span(5, 6), "P19")
    assert summary(second) == (TOKENS, Span(5, 6), Span(7, 8), "P17")


# a SciERC-style document: offsets count tokens across the whole document, ends inclusive
S1 = ["We", "use", "BERT", "embeddings", "for", "NER", "and", "parsing", "."]  # document tokens 0..8
S2 = ["A", "CRF", "improves", "sequence", "tagging", "."]  # document tokens 9..14
DYGIE = {
    "sentences": [S1, S2],
    "ner": [[[2, 3, "Method"], [5, 5, "Task"], [7, 7, "Task"]], [[10, 10, "Method"], [12, 13, "Task"]]],
    "relations": [[[2, 3, 5, 5, "USED-FOR"], [5, 5, 7, 7, "CONJUNCTION"]], [[10, 10, 12, 13, "USED-FOR"]]],
}
BERT, NER, PARSING = Span(2, 4, "Method"), Span(5, 6, "Task"), Span(7, 8, "Task")
CRF, TAGGING = Span(1, 2, "Method"), Span(3, 5, "Task")
DYGIE_POSITIVES = {(0, BERT, NER, "USED-FOR"), (0, NER, PARSING, "CONJUNCTION"), (1, CRF, TAGGING, "USED-FOR")}


@pytest.mark.parametrize("doc_key", [{"doc_key": "doc1"}, {}], ids=["with-doc-key", "without-doc-key"])
def test_dygie_document_gives_every_ordered_entity_pair(tmp_path, doc_key):
    path = write_lines(tmp_path / "scierc.json", {**DYGIE, **doc_key})
    examples = read_relations(path)

    got = {(ex.meta["sentence"], ex.head, ex.tail, ex.label) for ex in examples}
    pairs = [(0, h, t) for h in (BERT, NER, PARSING) for t in (BERT, NER, PARSING) if h != t]
    pairs += [(1, CRF, TAGGING), (1, TAGGING, CRF)]
    expected = {(s, h, t, label) for s, h, t, label in DYGIE_POSITIVES}
    expected |= {(s, h, t, NO_RELATION) for s, h, t in pairs if not any(p[:3] == (s, h, t) for p in DYGIE_POSITIVES)}
    assert len(examples) == 8 and got == expected
    assert all(ex.tokens == (S1, S2)[ex.meta["sentence"]] for ex in examples)

    positives = read_relations(path, negatives=False)
    assert {(ex.meta["sentence"], ex.head, ex.tail, ex.label) for ex in positives} == DYGIE_POSITIVES


def test_tacred_style_character_offsets_end_exclusive(tmp_path):
    path = write_lines(tmp_path / "tacred.jsonl", {
        "text": TEXT, "subj_start": 0, "subj_end": 11, "obj_start": 24, "obj_end": 30,
        "subj_type": "PERSON", "obj_type": "CITY", "relation": "per:city_of_birth"})
    (ex,) = read_relations(path)
    assert summary(ex) == (TOKENS, Span(0, 2, "PERSON"), Span(5, 6, "CITY"), "per:city_of_birth")


def test_original_tacred_token_offsets_end_inclusive(tmp_path):
    path = write_lines(tmp_path / "tacred.json", [{
        "token": TOKENS, "subj_start": 0, "subj_end": 1, "obj_start": 5, "obj_end": 5,
        "subj_type": "PERSON", "obj_type": "CITY", "relation": "per:city_of_birth"}])
    (ex,) = read_relations(path)
    assert summary(ex) == (TOKENS, Span(0, 2, "PERSON"), Span(5, 6, "CITY"), "per:city_of_birth")


# -- bad input -----------------------------------------------------------------------------
BAD = {
    "malformed-json": ([plain(), '{"text": "no closing brace"'], [":2", "malformed JSON"]),
    "missing-field": ([plain(), {"text": TEXT, "head": {"start": 0, "end": 11}}], [":2", "field 'tail'", "missing"]),
    "missing-tacred-field": ([{"text": TEXT, "subj_start": 0, "subj_end": 11, "obj_start": 24}],
                             [":1", "field 'obj_end'", "missing"]),
    "missing-opennre-field": ([{"token": TOKENS, "h": {"pos": [0, 2]}}], [":1", "field 't'", "missing"]),
    "span-out-of-range": ([plain(tail=(24, 99))], [":1", "field 'tail'", "out of range"]),
    "token-span-out-of-range": ([{"token": TOKENS, "h": {"pos": [0, 2]}, "t": {"pos": [8, 12]}}],
                                [":1", "field 'tail'", "out of range"]),
    "overlap": ([plain(), plain(head=(0, 11), tail=(6, 20))], [":2", "field 'tail'", "overlap"]),
    "opennre-overlap": ([{"token": TOKENS, "h": {"pos": [0, 2]}, "t": {"pos": [1, 3]}}], [":1", "overlap"]),
    "unrecognised": ([plain(), plain(), {"sentence": TEXT}], [":3", "unrecognised record"]),
}


@pytest.mark.parametrize(("lines", "fragments"), BAD.values(), ids=BAD.keys())
def test_bad_input_is_a_data_error_naming_file_line_and_field(tmp_path, lines, fragments):
    path = write_lines(tmp_path / "broken.jsonl", *lines)
    with pytest.raises(DataError) as err:
        read_relations(path)
    message = str(err.value)
    assert "broken.jsonl" in message
    for fragment in fragments:
        assert fragment in message


def test_bad_fewrel_instance_names_relation_and_index(tmp_path):
    data = {"P19": [{"tokens": TOKENS, "h": ["x", "Q1", [[0]]], "t": ["y", "Q2", [[]]]}]}
    (tmp_path / "fewrel.json").write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(DataError, match=r"fewrel\.json:P19\[0\] field 't': empty mention"):
        read_relations(tmp_path / "fewrel.json")


@pytest.mark.parametrize("content", ["", "  \n\n"], ids=["empty", "blank"])
def test_empty_file_is_a_data_error(tmp_path, content):
    (tmp_path / "empty.jsonl").write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.jsonl: file is empty"):
        read_relations(tmp_path / "empty.jsonl")


def test_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="file not found") as err:
        read_relations(tmp_path / "nope.jsonl")
    assert "nope.jsonl" in str(err.value)


def test_data_error_carries_location_attributes(tmp_path):
    path = write_lines(tmp_path / "broken.jsonl", plain(), plain(tail=(24, 99)))
    with pytest.raises(DataError) as err:
        read_relations(path)
    assert (err.value.path, err.value.line, err.value.field) == (path, 2, "tail")
