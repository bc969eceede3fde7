"""The end-to-end pipeline on the shipped sample (data/sample/pipeline), with HEADLESS models whose
memories hold the sample itself: on the sample's own sentences every word's and every pair's nearest
memory entry is itself, at distance 0, so with k = 1 the pipeline must give exactly the gold entities
(with their character offsets, after non-ASCII text too) and the gold relations."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from knnie import (
    Document,
    EntityRecognizer,
    KnnieError,
    KnnParams,
    Pipeline,
    RelationExtractor,
    read_relations,
    read_tagged,
)
from knnie.cli.main import app
from knnie.data.tagged import bio_spans
from tests.helpers import write_lines

SAMPLE = Path(__file__).parents[1] / "data" / "sample" / "pipeline"
TYPES = ["LOC", "ORG", "PER"]
NEAREST = asdict(KnnParams(k=1, temperature=1.0, lam=1.0, kernel="plain"))
runner = CliRunner(env={"COLUMNS": "1000"})  # error lines unwrapped


def with_sample_memory(model, examples) -> None:
    """Attach a memory of `examples` consulted at k = 1: the nearest entry decides."""
    model.attach_memory("sample", model.build_memory(examples))
    model.config.knn["sample"], model.config.knn_only["sample"] = dict(NEAREST), dict(NEAREST)


def sample_pipeline(ner_length: int = 256, re_length: int = 256) -> Pipeline:
    ner = EntityRecognizer.headless(max_length=ner_length, device="cpu")
    rex = RelationExtractor.headless(entity_types=TYPES, max_length=re_length, device="cpu")
    with_sample_memory(ner, read_tagged(SAMPLE / "ner.txt"))
    records = read_relations(SAMPLE / "relations.jsonl")
    unfit = rex.too_long(records)
    with_sample_memory(rex, [ex for i, ex in enumerate(records) if i not in unfit])
    return Pipeline(ner, rex)


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return sample_pipeline()


@pytest.fixture(scope="module")
def expected() -> list[dict]:
    return [json.loads(line) for line in (SAMPLE / "expected.jsonl").read_text(encoding="utf-8").splitlines()]


def triples(extraction) -> tuple[list[list], list[list]]:
    """Entities [start, end, type, text] and relations [head start, head end, label, tail start, tail end]."""
    entities = [[e.start, e.end, e.type, e.text] for e in extraction.entities]
    by_id = {e.id: e for e in extraction.entities}
    relations = sorted([by_id[r.head].start, by_id[r.head].end, r.label, by_id[r.tail].start, by_id[r.tail].end]
                       for r in extraction.relations)
    return entities, relations


@pytest.mark.parametrize("window", [0, 1])
def test_sample_gives_exactly_the_gold_triples(pipe, expected, window):
    extractions = pipe.extract([doc["text"] for doc in expected], window=window)
    for doc, x in zip(expected, extractions, strict=True):
        assert x.text == doc["text"] and not x.warnings
        entities, relations = triples(x)
        assert entities == doc["entities"], doc["id"]
        assert all(x.text[e.start : e.end] == e.text for e in x.entities)
        assert relations == sorted(r[:5] for r in doc["relations"] if r[5] <= window), doc["id"]
        assert all(r.label != "no_relation" and r.probability == r.p_knn == 1.0 and r.p_model is None
                   for r in x.relations)
    # the sample has relations across sentences, in both directions, that only window=1 finds
    cross = [r for doc in expected for r in doc["relations"] if r[5] == 1]
    assert len(cross) >= 5 and any(r[0] > r[3] for r in cross)


def test_offsets_after_non_ascii_text(pipe):
    text = "🎉 Chloé Dubois joined Renault last spring. Jürgen Weiß works for Siemens, which is based in München."
    [x] = pipe.extract([text])
    found = {e.text: (e.start, e.end, e.type) for e in x.entities}
    assert found == {"Chloé Dubois": (2, 14, "PER"), "Renault": (22, 29, "ORG"), "Jürgen Weiß": (43, 54, "PER"),
                     "Siemens": (65, 72, "ORG"), "München": (92, 99, "LOC")}
    assert all(text[s:e] == name for name, (s, e, _) in found.items())
    by_id = {e.id: e.text for e in x.entities}
    assert {(by_id[r.head], r.label, by_id[r.tail]) for r in x.relations} == {
        ("Chloé Dubois", "works_for", "Renault"), ("Jürgen Weiß", "works_for", "Siemens"),
        ("Siemens", "located_in", "München")}


def test_neighbours_on_request(pipe):
    text = "José Álvarez was born in Sevilla."
    [plain] = pipe.extract([text])
    assert "neighbours" not in plain.to_dict()["entities"][0] and "neighbours" not in plain.to_dict()["relations"][0]
    [x] = pipe.extract([text], neighbours=2)
    d = x.to_dict()
    for item in d["entities"] + d["relations"]:
        assert len(item["neighbours"]) == 2
        assert item["neighbours"][0]["distance"] == pytest.approx(0.0, abs=1e-3)
    [rel] = d["relations"]
    nearest = rel["neighbours"][0]
    assert (nearest["label"], nearest["text"], nearest["head"]["text"], nearest["tail"]["text"]) == (
        "born_in", text, "José Álvarez", "Sevilla")
    assert d["entities"][0]["neighbours"][0]["label"] == "B-PER"


def test_pretokenised_documents_keep_their_tokens(pipe):
    tokens = ["Ingrid", "Sørensen", "works", "for", "Maersk", "in", "København", "."]
    [x] = pipe.extract([Document(tokens)])
    assert x.text == " ".join(tokens)
    entities, relations = triples(x)
    assert entities == [[0, 15, "PER", "Ingrid Sørensen"], [26, 32, "ORG", "Maersk"], [36, 45, "LOC", "København"]]
    assert relations == [[0, 15, "works_for", 26, 32], [26, 32, "located_in", 36, 45]]
    assert [e.tokens for e in x.entities] == [(0, 2), (4, 5), (6, 7)]


def test_p_model_and_p_knn_split_the_probability(expected):
    """With a head, the relation's probability is λ·p_kNN + (1 − λ)·p_model: computed by hand here."""
    rex = RelationExtractor.new(["born_in", "located_in", "no_relation", "works_for"], entity_types=TYPES,
                                device="cpu")
    records = read_relations(SAMPLE / "relations.jsonl")
    with_sample_memory(rex, records)
    rex.config.knn["sample"]["lam"] = 0.25
    [p] = rex.predict(records[:1])
    _, head = rex.encode(records[:1])
    gold = rex.label_space.index(records[0].label)
    assert p.label == records[0].label and p.p_knn == 1.0
    assert p.p_model == pytest.approx(head[0, gold], abs=1e-6)
    assert p.probability == pytest.approx(0.25 * 1.0 + 0.75 * p.p_model, abs=1e-6)
    assert {"p_model", "p_knn"} <= p.to_dict().keys()


def test_unknown_entity_types_are_refused(pipe):
    with pytest.raises(KnnieError, match=r"types \['PER'\] that the relation extractor has no markers for"):
        Pipeline(pipe.recognizer, RelationExtractor.headless(entity_types=["LOC", "ORG"], device="cpu"))


def test_long_text_windows_cut_entities_and_pairs_with_one_warning(pipe, caplog, expected):
    """A recognizer whose windows hold a few words (as long as the longest word of the sample: no word
    is truncated) and a relation encoder too short for some pairs: nothing is dropped silently, each
    entity a window boundary cuts and each pair left out is in the warnings, and one line is logged."""
    sentences = read_tagged(SAMPLE / "ner.txt")
    encoder = pipe.recognizer.encoder
    longest = max(len(p) for s in sentences for p in encoder.pieces(s.tokens))
    pipe = sample_pipeline(ner_length=longest + len(encoder.prefix) + len(encoder.suffix), re_length=14)
    cut = [(w.sentence, e) for w in pipe.recognizer.windows(sentences, warn=False) if w.first_word
           for e in bio_spans(sentences[w.sentence].tags) if e.start < w.first_word < e.end]
    unfit = len(pipe.extractor.too_long(read_relations(SAMPLE / "relations.jsonl")))
    assert cut and unfit
    caplog.clear()  # building the memories warned of their own windows
    with caplog.at_level(logging.WARNING, logger="knnie"):
        extractions = pipe.extract([doc["text"] for doc in expected], window=1)
    # besides the encoders' notices that they read long input in windows, one line: the pipeline's
    lines = [r for r in caplog.records if r.levelno >= logging.WARNING and not r.name.startswith("knnie.encoders")]
    assert len(lines) == 1 and lines[0].name == "knnie.pipeline", [r.getMessage() for r in lines]
    warnings = [w for x in extractions for w in x.warnings]
    assert sum("spans the boundary of two encoder windows" in w for w in warnings) == len(cut)
    assert sum("not classified" in w for w in warnings) == unfit  # every pair of the sample is formed once
    missed = 0
    for doc, x in zip(expected, extractions):
        entities, relations = triples(x)
        assert entities == doc["entities"]  # words tagged in separate windows are still found
        assert set(map(tuple, relations)) <= {tuple(r[:5]) for r in doc["relations"]}
        missed += len(doc["relations"]) - len(relations)
    assert 0 < missed <= unfit  # a gold relation is missing only where its pair was left out, with a warning


@pytest.fixture(scope="module")
def saved(pipe, tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("pipeline")
    pipe.recognizer.save_pretrained(d / "ner")
    pipe.extractor.save_pretrained(d / "re")
    return d / "ner", d / "re"


def test_save_and_reload_give_the_same_extraction(pipe, saved, expected):
    texts = [doc["text"] for doc in expected[:8]]
    again = Pipeline.from_pretrained(*saved, device="cpu")
    assert [x.to_dict() for x in again.extract(texts, neighbours=1, window=1)] == \
        [x.to_dict() for x in pipe.extract(texts, neighbours=1, window=1)]


def extract_cli(saved: tuple[Path, Path], input: Path, output: Path, *extra: str):
    return runner.invoke(app, ["extract", "--ner", str(saved[0]), "--re", str(saved[1]), "--input", str(input),
                               "--output", str(output), *extra])


def test_cli_jsonl_and_txt(pipe, saved, tmp_path, expected):
    out = tmp_path / "out.jsonl"
    result = extract_cli(saved, SAMPLE / "documents.jsonl", out, "--window", "1", "--batch-size", "8")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [doc["id"] for doc in expected]
    assert [{k: v for k, v in r.items() if k != "id"} for r in rows] == \
        [x.to_dict() for x in pipe.extract([doc["text"] for doc in expected], window=1)]
    txt = tmp_path / "docs.txt"
    txt.write_text(f"{expected[0]['text']}\n\n{expected[1]['text']}\n", encoding="utf-8")
    result = extract_cli(saved, txt, out, "--neighbours", "1")
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [triples_of_row(r) for r in rows] == [sorted(r[:5] for r in doc["relations"]) for doc in expected[:2]]
    assert all(len(e["neighbours"]) == 1 for r in rows for e in r["entities"])


def triples_of_row(row: dict) -> list[list]:
    span = {e["id"]: (e["start"], e["end"]) for e in row["entities"]}
    return sorted([*span[r["head"]], r["label"], *span[r["tail"]]] for r in row["relations"])


@pytest.mark.parametrize(("lines", "where"), [
    (['{"id": "a", "text": "Marie Curie worked for the Sorbonne."}', '{"id": "b", "text": 5}'],
     "docs.jsonl:2 field 'text'"),
    (['{"text": "fine"}', '{"text": "broken"'], "docs.jsonl:2"),
    (['{"id": "a", "body": "no text here"}'], "docs.jsonl:1"),
])
def test_cli_bad_input_names_file_and_line(saved, tmp_path, lines, where):
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    result = extract_cli(saved, write_lines(tmp_path / "docs.jsonl", *lines), out)
    assert result.exit_code == 1
    assert where in result.output
    assert out.read_text() == "previous\n"  # nothing written over
