"""One document model: text → Document → NER entities → relation examples, Documents ↔ tagged
sentences, and DyGIE documents whose entity pairs are exactly the examples the reader gives."""

from __future__ import annotations

import numpy as np
import pytest

from knnie import (
    NO_RELATION,
    DataError,
    Document,
    Relation,
    Span,
    TaggedSentence,
    read_documents,
    read_relations,
    read_tagged,
)
from knnie.memory import Memory
from tests.helpers import write_lines
from tests.test_ner_unit import TAGS, recognizer
from tests.test_readers import DYGIE

# decomposed ë (e + U+0308), Ł, ã and a flag: offsets count code points, tokens keep characters whole
TEXT = "Zoë Bronte\u0308 met Łukasz in São Paulo 🇧🇷."
MENTIONS = ["Zoë Bronte\u0308", "Łukasz", "São Paulo"]


def rule_tags(tokens: list[str]) -> list[str]:
    """Capitalised words are persons, a run of them one person."""
    tags, previous = [], False
    for token in tokens:
        upper = token[0].isupper()
        tags.append(("I-PER" if previous else "B-PER") if upper else "O")
        previous = upper
    return tags


@pytest.fixture
def ner(monkeypatch):
    """An untrained recognizer whose encoder answers by `rule_tags` (one-hot vectors and p_model),
    with a memory of one word per tag that agrees with it."""
    r = recognizer()

    def encode(sentences, batch_size=64, show_progress=False):
        ids = [TAGS.index(t) for s in sentences for t in rule_tags(s.tokens)]
        return np.eye(8, dtype=np.float32)[ids], np.eye(len(TAGS))[ids]

    monkeypatch.setattr(r, "encode", encode)
    records = [{"text": f"training sentence {i}", "word": i, "tag": tag} for i, tag in enumerate(TAGS)]
    r.attach_memory("train", Memory(np.eye(8, dtype=np.float32)[: len(TAGS)], np.arange(len(TAGS)), records, TAGS,
                                    r.fingerprint))
    r.config.knn["train"] = {"k": 1, "temperature": 1.0, "lam": 0.5, "kernel": "plain"}
    return r


def test_text_to_entities_to_relation_examples_keeps_character_offsets(ner):
    doc = Document.from_text(TEXT, source="input 0")
    ner.predict_documents([doc], neighbours=1)
    assert [doc.mention(e) for e in doc.entities] == MENTIONS
    assert [TEXT[e.char_start : e.char_end] for e in doc.entities] == MENTIONS
    assert [e.type for e in doc.entities] == ["PER"] * 3 and all(e.score == 1.0 for e in doc.entities)
    assert doc.entities[0].neighbours[0].to_row() == {"text": "training sentence 3", "word": 3, "label": "B-PER",
                                                      "distance": 0.0, "memory": "train"}

    examples = doc.relation_examples()  # raw text carries no relation annotation: pairs are unlabelled
    assert [(ex.mention(ex.head), ex.mention(ex.tail)) for ex in examples] == [
        (h, t) for h in MENTIONS for t in MENTIONS if h != t]
    for ex in examples:
        assert ex.label is None and ex.text == TEXT and ex.source == "input 0"
        row = ex.to_row()
        for name in ("head", "tail"):
            assert TEXT[row[name]["start"] : row[name]["end"]] == row[name]["text"]


def test_ner_prediction_rows_give_mentions_offsets_and_neighbours_as_labels(ner):
    [prediction] = ner.predict([TEXT], neighbours=1)
    first = prediction.to_dict()["entities"][0]
    assert first == {"text": MENTIONS[0], "type": "PER", "start": 0, "end": 2, "char_start": 0, "char_end": 11,
                     "score": 1.0, "neighbours": [{"text": "training sentence 3", "word": 3, "label": "B-PER",
                                                   "distance": 0.0, "memory": "train"}]}


def test_document_and_tagged_sentence_round_trip():
    doc = Document.from_text(TEXT, source="in.txt:3")
    doc.entities = [Span(5, 7, "LOC"), Span(0, 2, "PER")]
    sentence = doc.tagged()
    assert sentence.tags == ["B-PER", "I-PER", "O", "O", "O", "B-LOC", "I-LOC", "O", "O"]
    assert (sentence.tokens, sentence.text, sentence.char_offsets) == (doc.tokens, TEXT, doc.char_offsets)
    back = Document.from_tagged(sentence)
    assert back == Document(doc.tokens, TEXT, doc.char_offsets, [Span(0, 2, "PER"), Span(5, 7, "LOC")],
                            source="in.txt:3")
    assert [back.mention(e) for e in back.entities] == [TEXT[e.char_start : e.char_end] for e in back.entities] == [
        "Zoë Bronte\u0308", "São Paulo"]
    assert doc.tagged(tags=False).tags is None


def test_tagged_sentences_of_a_file_round_trip(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("EU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n", encoding="utf-8")
    sentences = read_tagged(path)
    documents = [Document.from_tagged(s) for s in sentences]
    assert documents[1].entities == [Span(0, 2, "PER")] and documents[1].source == f"{path}:6"
    assert documents[0].entities[1].char_start is None  # tokens without text have no character offsets
    assert [d.tagged().tags for d in documents] == [s.tags for s in sentences]


@pytest.mark.parametrize(("entities", "message"), [
    ([Span(0, 2, "PER"), Span(1, 3, "LOC")], r"in\.txt:1 field 'entities': entity \[1, 3\) overlaps another entity"),
    ([Span(0, 2)], r"entity \[0, 2\) has no type: BIO tags cannot hold it"),
    ([Span(8, 10, "LOC")], r"entity \[8, 10\) is out of range for 9 tokens"),
])
def test_entities_bio_tags_cannot_hold_are_refused(entities, message):
    doc = Document.from_text(TEXT, source="in.txt:1")
    doc.entities = entities
    with pytest.raises(DataError, match=message):
        doc.tagged()


@pytest.mark.parametrize("negatives", [True, False])
def test_dygie_documents_give_exactly_the_readers_examples(tmp_path, negatives):
    path = write_lines(tmp_path / "scierc.json", {**DYGIE, "doc_key": "d1"}, {**DYGIE, "relations": [[], []]})
    documents = read_documents(path)
    assert [(d.source, d.meta) for d in documents] == [
        (f"{path}:1", {"doc_key": "d1", "sentence": 0}), (f"{path}:1", {"doc_key": "d1", "sentence": 1}),
        (f"{path}:2", {"doc_key": None, "sentence": 0}), (f"{path}:2", {"doc_key": None, "sentence": 1})]
    assert documents[0].relations[0] == Relation(Span(2, 4, "Method"), Span(5, 6, "Task"), "USED-FOR")
    examples = [ex for d in documents for ex in d.relation_examples(negatives)]
    assert examples == read_relations(path, negatives=negatives)
    assert [ex.to_dict() for ex in examples] == [ex.to_dict() for ex in read_relations(path, negatives=negatives)]
    assert len(examples) == (16 if negatives else 3)


def test_entity_pairs_are_labelled_from_relations_by_their_tokens():
    doc = Document(["A", "uses", "B", "and", "C"], entities=[Span(0, 1, "M"), Span(2, 3, "T"), Span(4, 5, "T")],
                   relations=[Relation(Span(0, 1, "M"), Span(2, 3, "T"), "USED-FOR")])
    labels = {(ex.head.start, ex.tail.start): ex.label for ex in doc.relation_examples()}
    assert labels == {(0, 2): "USED-FOR", (0, 4): NO_RELATION, (2, 0): NO_RELATION, (2, 4): NO_RELATION,
                      (4, 0): NO_RELATION, (4, 2): NO_RELATION}
    doc.entities = [Span(0, 1, "X"), Span(2, 3, "Y")]  # predicted with other types: the relation is on the tokens
    assert [ex.label for ex in doc.relation_examples(negatives=False)] == ["USED-FOR"]


def test_read_documents_of_plain_text_and_text_records(tmp_path):
    txt = tmp_path / "in.txt"
    txt.write_text("Ada left Paris.\n\n北京欢迎你\n", encoding="utf-8")
    first, second = read_documents(txt)
    assert first.tokens == ["Ada", "left", "Paris", "."] and first.text == "Ada left Paris."
    assert (first.source, second.source) == (f"{txt}:1", f"{txt}:3")
    assert first.relations is None and first.entities == []
    assert read_documents(txt, chars=True)[1].tokens == list("北京欢迎你")
    records = write_lines(tmp_path / "in.jsonl", {"text": TEXT, "id": "t1", "source": "web"})
    [doc] = read_documents(records)
    assert doc.meta == {"id": "t1"} and doc.relation_examples() == []
    assert [TEXT[a:b] for a, b in doc.char_offsets] == doc.tokens and doc.tokens[1] == "Bronte\u0308"


@pytest.mark.parametrize(("line", "message"), [
    ({"tokens": ["a"]}, r"in\.jsonl:2: expected a DyGIE document \{sentences, ner\[, relations\]\} or a \{text\}"),
    ({"text": "Ada met Bob", "head": {"start": 0, "end": 3}, "tail": {"start": 8, "end": 11}},
     r"in\.jsonl:2: expected a DyGIE document .* \(relation examples are read by read_relations\)"),
    ({"text": 3}, r"in\.jsonl:2 field 'text': needs a string, found 3"),
    ({"text": " "}, r"in\.jsonl:2 field 'text': empty text: no word to read"),
    ({**DYGIE, "ner": [[[2, 3, "Method"]], []]}, r"in\.jsonl:2 field 'relations\[0\]\[0\]': argument \[5, 5\] is not"),
])
def test_bad_document_records_name_file_line_and_field(tmp_path, line, message):
    path = write_lines(tmp_path / "in.jsonl", {"text": "fine"}, line)
    with pytest.raises(DataError, match=message):
        read_documents(path)


def test_an_empty_file_has_no_documents(tmp_path):
    (tmp_path / "in.txt").write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataError, match="file is empty"):
        read_documents(tmp_path / "in.txt")


def test_unlabelled_tagged_sentence_gives_a_document_without_entities():
    doc = Document.from_tagged(TaggedSentence(["Ada", "smiled"]))
    assert doc.entities == [] and doc.relation_examples() == [] and doc.tagged().tags == ["O", "O"]
