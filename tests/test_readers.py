"""Every input format gives the same canonical examples; bad input names file, line and field."""

from __future__ import annotations

import json

import pytest

from knnie import NO_RELATION, DataError, Span, read_relations
from knnie.data.tagged import read_sentences, read_tagged, sentence_from_text
from knnie.data.tokenize import tokenize_with_offsets
from knnie.distant import read_aliases, read_triples
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


# -- wrong JSON types: a DataError naming the field, never a TypeError later --------------------
def opennre(**change) -> dict:
    return {"token": TOKENS, "h": {"pos": [0, 2]}, "t": {"pos": [5, 6]}, "relation": "born in", **change}


def tacred_tokens(**change) -> dict:
    return {"token": TOKENS, "subj_start": 0, "subj_end": 1, "obj_start": 5, "obj_end": 5, **change}


WRONG_TYPES = {
    # item 7 of #11: a boolean is no offset, in any format
    "plain-start-true": (plain(head=(True, 11)), "field 'head.start': needs an integer, found true"),
    "opennre-pos-true": (opennre(t={"pos": [5, True]}), "field 't.pos': needs an integer, found true"),
    "opennre-pos-string": (opennre(t={"pos": ["5", 6]}), "field 't.pos': needs an integer, found \"5\""),
    "tacred-offset-true": ({**tacred_tokens(), "obj_end": True}, "field 'obj_end': needs an integer, found true"),
    "dygie-span-true": ({**DYGIE, "ner": [[[2, True, "Method"]], []]}, "field 'ner[0][0]': needs an integer"),
    # item 9: labels, types, tokens and entities of the wrong type
    "plain-label-number": (plain(label=3), "field 'label': needs a string, found 3"),
    "plain-type-list": (plain(head=(0, 11)) | {"head": {"start": 0, "end": 11, "type": ["PER"]}},
                        "field 'head.type': needs a string, found [\"PER\"]"),
    "opennre-tail-not-object": (opennre(t="Warsaw"), "field 't': needs an object {pos: [start, end)[, type]}"),
    "opennre-relation-object": (opennre(relation={"name": "born in"}), "field 'relation': needs a string"),
    "opennre-tokens-numbers": (opennre(token=[1, 2, 3, 4, 5, 6]), "field 'token': needs a list of strings"),
    "tacred-string-offset": (tacred_tokens(subj_start="0"), "field 'subj_start': needs an integer, found \"0\""),
    "tacred-type-number": (tacred_tokens(subj_type=7), "field 'subj_type': needs a string, found 7"),
    "dygie-sentence-string": ({**DYGIE, "sentences": [TEXT, S2]}, "field 'sentences[0]': needs a list of strings"),
    "dygie-ner-missing-sentence": ({**DYGIE, "ner": DYGIE["ner"][:1]},
                                   "field 'ner': needs a list of 2 lists (one per sentence)"),
    "dygie-entity-short": ({**DYGIE, "ner": [[[2, 3]], []]}, "field 'ner[0][0]': needs a list of 3 values"),
    "dygie-entity-type-number": ({**DYGIE, "ner": [[[2, 3, 1]], []]}, "field 'ner[0][0]': needs a string"),
    "dygie-entity-outside-sentence": ({**DYGIE, "ner": [[[2, 10, "Method"]], []]},
                                      "field 'ner[0][0]': span [2, 10] is outside its sentence"),
    "dygie-relation-label-missing": ({**DYGIE, "relations": [[[2, 3, 5, 5]], []]},
                                     "field 'relations[0][0]': needs a list of 5 values"),
    "dygie-relation-not-entities": ({**DYGIE, "relations": [[[2, 3, 6, 6, "USED-FOR"]], []]},
                                    "field 'relations[0][0]': argument [6, 6] is not an entity of sentence 0"),
}


@pytest.mark.parametrize(("record", "message"), WRONG_TYPES.values(), ids=WRONG_TYPES.keys())
def test_values_of_the_wrong_type_are_data_errors_naming_the_field(tmp_path, record, message):
    path = write_lines(tmp_path / "typed.jsonl", record)
    with pytest.raises(DataError) as err:
        read_relations(path)
    assert f"typed.jsonl:1 {message}" in str(err.value)


@pytest.mark.parametrize(("instance", "message"), [
    ({"tokens": TOKENS, "h": ["x", "Q1", [[0, True]]], "t": ["y", "Q2", [[5]]]},
     "field 'h': needs an integer, found true"),
    ({"tokens": TEXT, "h": ["x", "Q1", [[0]]], "t": ["y", "Q2", [[5]]]}, "field 'tokens': needs a list of strings"),
    ({"tokens": TOKENS, "h": ["x", "Q1", [[0]]], "t": ["y", "Q2"]}, "field 't': needs [name, id, [[index, ...]]]"),
], ids=["boolean-index", "tokens-string", "no-mention"])
def test_fewrel_values_of_the_wrong_type_name_relation_instance_and_field(tmp_path, instance, message):
    (tmp_path / "fewrel.json").write_text(json.dumps({"P19": [instance]}), encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_relations(tmp_path / "fewrel.json")
    assert f"fewrel.json:P19[0] {message}" in str(err.value)


# -- files: encoding, BOM, directories (items 8 and 10 of #11) ----------------------------------
EVERY_READER = {"relations": read_relations, "tagged": read_tagged, "sentences": read_sentences,
                "triples": read_triples, "aliases": read_aliases}


@pytest.mark.parametrize("read", EVERY_READER.values(), ids=EVERY_READER.keys())
def test_non_utf8_file_is_named_with_its_line(tmp_path, read):
    path = tmp_path / "latin1.txt"
    path.write_bytes("A\tr\tB\nZ\u00fcrich\tO\tx\n".encode("latin-1"))  # ü as the single byte 0xfc, line 2
    with pytest.raises(DataError) as err:
        read(path)
    assert str(err.value) == f"{path}:2: not UTF-8 (byte 0xfc)" and err.value.line == 2


@pytest.mark.parametrize("read", EVERY_READER.values(), ids=EVERY_READER.keys())
def test_a_directory_is_not_a_file(tmp_path, read):
    with pytest.raises(DataError, match="is a directory, expected a file"):
        read(tmp_path)


def test_a_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(plain(label="b")).encode() + b"\n")
    (ex,) = read_relations(path)
    assert summary(ex) == (TOKENS, Span(0, 2), Span(5, 6), "b")


def test_tokeniser_keeps_every_character_whole():
    text = "Cafe\u0301 👩‍👩‍👧 🇫🇷, हिन्दी भाषा!"  # é as e + U+0301; a ZWJ family; a flag; vowel signs and virama
    tokens, offsets = tokenize_with_offsets(text)
    assert tokens == ["Cafe\u0301", "👩‍👩‍👧", "🇫🇷", ",", "हिन्दी", "भाषा", "!"]
    assert [text[a:b] for a, b in offsets] == tokens
    chars = sentence_from_text("北京 👩‍👩‍👧🇫🇷e\u0301", chars=True)
    assert chars.tokens == ["北", "京", "👩‍👩‍👧", "🇫🇷", "e\u0301"]
    assert [chars.text[a:b] for a, b in chars.char_offsets] == chars.tokens


def test_entity_spans_on_unicode_text_map_to_whole_characters(tmp_path):
    text = "Cafe\u0301 Noir opened in 🇫🇷."
    path = write_lines(tmp_path / "u.jsonl", {"text": text, "head": {"start": 0, "end": 10},
                                              "tail": {"start": 21, "end": 23}})
    (ex,) = read_relations(path)
    assert ex.mention(ex.head) == "Cafe\u0301 Noir" and ex.mention(ex.tail) == "🇫🇷"
    assert [text[a:b] for a, b in ex.char_offsets] == ex.tokens


@pytest.mark.parametrize(("head", "tail", "message"), [
    ((0, 4), (21, 23), "field 'head': span [0, 4) ends inside a character (at 4)"),  # between e and its accent
    ((0, 10), (22, 23), "field 'tail': span [22, 23) starts inside a character (at 22)"),  # half a flag
])
def test_span_edge_inside_a_character_is_refused(tmp_path, head, tail, message):
    path = write_lines(tmp_path / "u.jsonl", plain(head=head, tail=tail, text="Cafe\u0301 Noir opened in 🇫🇷."))
    with pytest.raises(DataError, match=r"u\.jsonl:1 ") as err:
        read_relations(path)
    assert message in str(err.value)


def test_a_unicode_line_separator_inside_a_json_string_does_not_end_the_record(tmp_path):
    text = "Marie Curie\u2028was born in Warsaw."  # U+2028 is legal, unescaped, inside a JSON string
    path = tmp_path / "ls.jsonl"
    path.write_text(json.dumps(plain(tail=(24, 30), text=text), ensure_ascii=False) + "\n", encoding="utf-8")
    (ex,) = read_relations(path)
    assert ex.mention(ex.tail) == "Warsaw" and ex.source == f"{path}:1"
