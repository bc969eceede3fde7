"""kNN-NER without training: readers and their errors, BIO decoding, the fast span-F1
against seqeval, p_kNN on a toy word memory, and long-sentence windows."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from seqeval.metrics import classification_report, f1_score

from knnie.data.schema import Span
from knnie.data.tagged import bio_spans, bio_tags, read_sentences, read_tagged, sentence_from_text
from knnie.encoders.representer import WordRepresenter
from knnie.encoders.words import CharBiLSTMEncoder
from knnie.errors import DataError, IncompatibleArtefactError
from knnie.evaluation.entities import TagTable, entity_f1_ids, entity_report
from knnie.memory import KnnParams, Memory
from knnie.tasks.ner import EntityRecognizer, NERConfig, tag_set
from knnie.tasks.task_model import TaskModel

TAGS = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]


def recognizer(tags: list[str] = TAGS, max_length: int = 512) -> EntityRecognizer:
    """A tiny untrained char-BiLSTM recognizer: enough to exercise everything but accuracy."""
    encoder = CharBiLSTMEncoder(list("abcdefghijklmnopqrstuvwxyz"), embed_dim=8, hidden=4, max_length=max_length)
    return EntityRecognizer(TaskModel(WordRepresenter(encoder), len(tags)),
                            NERConfig(tags=tags, encoder="char-bilstm", encoder_kind="char-bilstm"))


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- readers ---------------------------------------------------------------------------------
def test_columns_docstart_tabs_and_bioes(tmp_path: Path) -> None:
    f = write(tmp_path / "a.txt", "-DOCSTART- -X- O O\n\nEU\tNNP\tB-ORG\nrejects VBZ O\n\n"
                                  "New NNP B-LOC\nYork NNP E-LOC\nis VBZ O\nbig JJ S-MISC\n")
    a, b = read_tagged(f)
    assert a.tokens == ["EU", "rejects"] and a.tags == ["B-ORG", "O"] and a.lines == [3, 4]
    assert b.tags == ["B-LOC", "I-LOC", "O", "B-MISC"]
    assert tag_set([a, b]) == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG"]


def test_jsonl(tmp_path: Path) -> None:
    f = write(tmp_path / "a.jsonl", '{"tokens": ["Ada", "smiled"], "tags": ["B-PER", "O"]}\n')
    assert read_tagged(f)[0].tags == ["B-PER", "O"]


@pytest.mark.parametrize(("text", "where", "message"), [
    ("EU B-ORG\nrejects VBZ O\n", "a.txt:2", "expected 2 columns"),
    ("EU\n", "a.txt:1", "at least two columns"),
    ("EU B-ORG\nrejects X-ORG\n", "a.txt:2", "tag 'X-ORG'"),
])
def test_column_errors_name_file_and_line(tmp_path: Path, text: str, where: str, message: str) -> None:
    with pytest.raises(DataError, match=message) as e:
        read_tagged(write(tmp_path / "a.txt", text))
    assert where in str(e.value)


@pytest.mark.parametrize(("text", "message"), [
    ('{"tokens": [], "tags": []}', "a.jsonl:2 field 'tokens': empty sentence"),
    ('{"tokens": ["a"], "tags": []}', "a.jsonl:2 field 'tags': 0 tags for 1 tokens"),
    ("{oops", "a.jsonl:2: malformed JSON"),
])
def test_jsonl_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError) as e:
        read_tagged(write(tmp_path / "a.jsonl", '{"tokens": ["a"], "tags": ["O"]}\n' + text + "\n"))
    assert message in str(e.value)


def test_prediction_input(tmp_path: Path) -> None:
    txt = read_sentences(write(tmp_path / "s.txt", "Ada left Paris.\n\n北京欢迎你\n"))
    assert [s.tokens for s in txt] == [["Ada", "left", "Paris", "."], ["北京欢迎你"]]
    assert read_sentences(tmp_path / "s.txt", chars=True)[1].tokens == list("北京欢迎你")
    with pytest.raises(DataError, match=r"s\.jsonl:1 field 'tokens': empty sentence"):
        read_sentences(write(tmp_path / "s.jsonl", '{"tokens": []}\n'))
    with pytest.raises(DataError, match="empty sentence"):
        recognizer().predict(["   "])


def test_unknown_tag_at_evaluation(tmp_path: Path) -> None:
    f = write(tmp_path / "test.txt", "Ada B-PER\n\nin O\nRome B-CITY\n")
    with pytest.raises(DataError) as e:
        recognizer().evaluate(read_tagged(f))
    assert "test.txt:4" in str(e.value) and "B-CITY" in str(e.value)


# -- decoding and scoring --------------------------------------------------------------------
@pytest.mark.parametrize(("tags", "spans"), [
    (["B-PER", "I-PER", "O", "B-LOC"], [Span(0, 2, "PER"), Span(3, 4, "LOC")]),
    (["I-PER", "I-PER", "O"], [Span(0, 2, "PER")]),                      # I- at the start begins an entity
    (["O", "I-LOC", "B-LOC", "I-LOC"], [Span(1, 2, "LOC"), Span(2, 4, "LOC")]),  # I- after O; B- always begins
    (["B-PER", "I-LOC", "I-LOC"], [Span(0, 1, "PER"), Span(1, 3, "LOC")]),   # I- of another type begins its own
    (["B-PER", "B-PER"], [Span(0, 1, "PER"), Span(1, 2, "PER")]),
    (["O", "O"], []),
])
def test_bio_repair(tags: list[str], spans: list[Span]) -> None:
    assert bio_spans(tags) == spans
    n = len(tags)
    gold = np.array([TAGS.index(t) for t in tags])
    first = np.zeros(n, dtype=bool)
    first[0] = True
    # the fast scorer reads sequences by the same rule: a sequence scores 1 against itself
    # and against its canonical BIO rewrite
    canon = bio_tags(spans, n)
    assert bio_spans(canon) == spans
    pred = np.array([[TAGS.index(t) for t in canon]])
    expected = 1.0 if spans else 0.0
    assert entity_f1_ids(pred, gold, first, TagTable(TAGS))[0] == expected


def split(ids: np.ndarray, lengths: list[int]) -> list[list[str]]:
    return [[TAGS[i] for i in part] for part in np.split(ids, np.cumsum(lengths)[:-1])]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # seqeval averages empty classes
def test_fast_f1_equals_seqeval_on_crafted_and_random() -> None:
    crafted = [
        (["B-PER", "I-PER", "O"], ["B-PER", "O", "O"]),       # boundary error
        (["B-PER", "I-PER"], ["B-LOC", "I-LOC"]),             # type error
        (["O", "B-LOC"], ["O", "I-LOC"]),                     # repaired I- is correct
        (["B-LOC", "I-LOC"], ["B-LOC", "I-LOC", ]),
        (["B-LOC", "I-LOC", "I-LOC"], ["B-LOC", "I-LOC", "I-PER"]),
    ]
    rng = np.random.default_rng(0)
    cases = [([g], [p]) for g, p in crafted]
    for _ in range(200):
        lengths = list(rng.integers(1, 9, size=rng.integers(1, 6)))
        n = sum(lengths)
        gold = rng.choice(len(TAGS), n, p=[0.5, 0.15, 0.1, 0.15, 0.1])
        pred = np.where(rng.random(n) < 0.7, gold, rng.integers(0, len(TAGS), n))
        cases.append((split(gold, lengths), split(pred, lengths)))
    table = TagTable(TAGS)
    for gold, pred in cases:
        lengths = [len(s) for s in gold]
        first = np.zeros(sum(lengths), dtype=bool)
        first[np.cumsum([0, *lengths[:-1]])] = True
        ids = lambda sents: np.array([TAGS.index(t) for s in sents for t in s])  # noqa: E731
        fast = entity_f1_ids(np.stack([ids(pred), ids(gold)]), ids(gold), first, table)
        assert fast[0] == pytest.approx(f1_score(gold, pred, zero_division=0), abs=1e-12)
        assert fast[1] == (1.0 if any(t != "O" for s in gold for t in s) else 0.0)
        report = entity_report(gold, pred)
        assert report["f1"] == pytest.approx(fast[0], abs=1e-12)
        ref = classification_report(gold, pred, output_dict=True, zero_division=0)
        for typ, r in report["per_type"].items():
            if r["support"]:
                assert r["f1"] == pytest.approx(ref[typ]["f1-score"], abs=1e-12)


# -- kNN -------------------------------------------------------------------------------------
def test_p_knn_hand_checked_on_a_toy_word_memory() -> None:
    r = recognizer()
    keys = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [5.0, 5.0]], dtype=np.float32)
    values = np.array([1, 1, 3, 0])  # B-LOC, B-LOC, B-PER, O
    records = [{"text": f"s{i}", "word": 0, "tag": TAGS[v]} for i, v in enumerate(values)]
    r.attach_memory("train", Memory(keys, values, records, TAGS, r.fingerprint))
    r.config.knn["train"] = {"k": 3, "temperature": 2.0, "lam": 0.25, "kernel": "plain"}
    r.config.knn_only["train"] = {"k": 3, "temperature": 2.0, "lam": 1.0, "kernel": "plain"}
    query = np.array([[0.0, 0.0]], dtype=np.float32)
    # squared L2 to the 3 nearest: 0 (B-LOC), 1 (B-LOC), 4 (B-PER); weights exp(-d/2)
    w = np.exp(-np.array([0.0, 1.0, 4.0]) / 2)
    p_knn = np.zeros(5)
    p_knn[1], p_knn[3] = (w[0] + w[1]) / w.sum(), w[2] / w.sum()
    p_model = np.full((1, 5), 0.2)
    p = r.distributions(p_model, r.search(query))
    assert p["knn"][0] == pytest.approx(p_knn)
    assert p["knn_ner"][0] == pytest.approx(0.25 * p_knn + 0.75 * 0.2)
    assert p_knn[1] == pytest.approx(0.9223, abs=1e-4)  # by hand: (1 + e^-0.5) / (1 + e^-0.5 + e^-2)
    assert r.params("train") == KnnParams(3, 2.0, 0.25, "plain")


def test_memory_from_another_representation_is_refused_but_other_tags_join_the_label_space() -> None:
    a, b = recognizer(), recognizer()
    memory = Memory(np.zeros((1, 8), np.float32), np.array([0]), [{}], TAGS, a.fingerprint)
    with pytest.raises(IncompatibleArtefactError, match="fingerprint"):
        b.attach_memory("train", memory)
    c = recognizer(["O", "B-X", "I-X"])
    c.attach_memory("train", Memory(np.zeros((1, 8), np.float32), np.array([0]), [{}], TAGS, c.fingerprint))
    assert c.label_space == ["O", "B-X", "I-X", *sorted(set(TAGS) - {"O"})]


def test_long_sentences_are_windowed_not_dropped(caplog) -> None:
    r = recognizer(max_length=10)
    s = sentence_from_text("alpha beta gamma delta epsilon")  # characters are the sub-tokens: 5+4, 5+5, 7
    with caplog.at_level(logging.WARNING):
        windows = r.windows([s])
    assert "sentence 0 (5 words, 3 windows)" in caplog.text
    assert [w.first_word for w in windows] == [0, 2, 4]
    vectors, probs = r.encode([s])
    assert vectors.shape == (5, 8) and np.allclose(probs.sum(-1), 1.0) and (np.abs(vectors).sum(-1) > 0).all()
    assert len(r.predict([s.tokens])[0].tags) == 5
