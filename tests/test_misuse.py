"""Misuse gets a clear KnnieError before it does harm (issue #11): bad arguments and tuned
settings, bad training setups, output paths that cannot be written, over-long examples.

The models here are untrained (weights do not matter to these checks), so the module is fast."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from knnie import (
    DataError,
    EntityRecognizer,
    KnnieError,
    KnnParams,
    RelationExample,
    RelationExtractor,
    Span,
    TaggedSentence,
    TrainConfig,
    example_from_text,
    train,
    train_ner,
)
from knnie.cli.main import app
from knnie.encoders.markers import encode
from knnie.tasks.training import fit
from tests.test_ner_unit import recognizer

LABELS = ["founded", "other"]
MAX_LENGTH = 32
SAMPLE = Path(__file__).parents[1] / "data" / "sample"
SETTINGS = {"k": 2, "temperature": 1.0, "lam": 0.5, "kernel": "plain"}
runner = CliRunner()


@pytest.fixture(scope="module")
def untrained() -> RelationExtractor:
    return RelationExtractor.new(LABELS, max_length=MAX_LENGTH)


@pytest.fixture
def extractor(untrained: RelationExtractor) -> RelationExtractor:
    """A copy each test may give memories and settings."""
    return copy.deepcopy(untrained)


def short(i: int, label: str | None = "founded") -> RelationExample:
    return RelationExample(["Alice", "founded", f"Acme{i}"], Span(0, 1), Span(2, 3), label,
                           source=f"data.jsonl:{i + 1}")


def long(i: int, head: int = 5, tail: int = 90) -> RelationExample:
    """100 words of filler: with the entities 85 words apart no 32-sub-word window holds both."""
    tokens = ["filler"] * 100
    tokens[head], tokens[tail] = "Alice", "Bob"
    return RelationExample(tokens, Span(head, head + 1), Span(tail, tail + 1), "founded", source=f"long.jsonl:{i + 1}")


def with_memory(extractor: RelationExtractor, n: int = 8) -> RelationExtractor:
    extractor.attach_memory("train", extractor.build_memory([short(i, LABELS[i % 2]) for i in range(n)]))
    return extractor


def knnie(*args: object) -> tuple[int, str]:
    """Exit code and output, its lines joined again (the console wraps long error lines)."""
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


# -- 6: API misuse ------------------------------------------------------------------------------
def test_tuning_on_an_empty_dev_set_is_refused_and_keeps_the_settings(extractor):
    with_memory(extractor).config.knn["train"] = dict(SETTINGS)
    before = copy.deepcopy(extractor.config)
    with pytest.raises(KnnieError, match="the dev set is empty"):
        extractor.tune([])
    assert extractor.config == before


@pytest.mark.parametrize("batch_size", [0, -1])
def test_a_batch_size_below_one_is_refused(extractor, batch_size):
    with pytest.raises(KnnieError, match=f"batch_size must be an integer ≥ 1, not {batch_size}"):
        with_memory(extractor).predict([short(0)], batch_size=batch_size)
    with pytest.raises(KnnieError, match="batch_size must be an integer ≥ 1"):
        recognizer().predict(["alpha beta"], batch_size=batch_size)


def test_a_negative_number_of_neighbours_is_refused(extractor):
    with pytest.raises(KnnieError, match="neighbours must be an integer ≥ 0, not -1"):
        with_memory(extractor).predict([short(0)], neighbours=-1)
    with pytest.raises(KnnieError, match="neighbours must be an integer ≥ 0, not -1"):
        recognizer().predict(["alpha beta"], neighbours=-1)


def test_more_neighbours_than_k_are_all_returned(extractor):
    with_memory(extractor).config.knn["train"] = dict(SETTINGS)
    extractor.config.knn_only["train"] = {**SETTINGS, "lam": 1.0}
    [p] = extractor.predict([short(0)], neighbours=5)
    assert len(p.neighbours) == 5  # the search goes as deep as asked, not only k = 2 deep


@pytest.mark.parametrize(("head", "tail", "message"), [
    ((0, 5, None), (0, 5, None), "overlap"),
    ((0, 5, None), (3, 9, None), "overlap"),
    ((0, 5, None), (10, 40, None), r"span \[10, 40\) out of range for a text of 14 characters"),
    ((-3, 5, None), (10, 13, None), r"span \[-3, 5\) out of range"),
    ((0, 5, None), (10, 10, None), "out of range"),
], ids=["identical", "overlapping", "past-the-end", "negative", "empty"])
def test_example_from_text_refuses_spans_the_readers_refuse(head, tail, message):
    with pytest.raises(DataError, match=message) as err:
        example_from_text("Alice met Bob.", head, tail, source="mine.jsonl:4")
    assert str(err.value).startswith("mine.jsonl:4 field ")


@pytest.mark.parametrize("labels", [[], ["founded"], ["founded", "founded"]], ids=["none", "one", "repeated"])
def test_a_relation_extractor_needs_two_labels_or_more(labels):
    with pytest.raises(KnnieError, match="needs two labels or more, each once"):
        RelationExtractor.new(labels)


def test_a_negative_label_must_be_a_label():
    with pytest.raises(KnnieError, match="negative label 'NA' is not one of the labels"):
        RelationExtractor.new(LABELS, negative_label="NA")


@pytest.mark.parametrize("tags", [[], ["O"], ["B-PER", "I-PER"]], ids=["none", "only-O", "no-O"])
def test_an_entity_recognizer_needs_entity_tags(tags):
    with pytest.raises(KnnieError, match="needs the tag O and entity tags"):
        EntityRecognizer.new(tags, encoder="char-bilstm", train=[TaggedSentence(["ab"], ["O"])])


@pytest.mark.parametrize(("field", "value", "message"), [
    ("k", 0, "k must be an integer ≥ 1, not 0"),
    ("temperature", 0, "temperature must be a finite number > 0, not 0"),
    ("temperature", float("inf"), "temperature must be a finite number > 0, not inf"),
    ("lam", 1.5, r"lam must be a number in \[0, 1\], not 1.5"),
    ("kernel", "gauss", "kernel must be one of plain, rbf, not 'gauss'"),
])
def test_unsound_settings_in_a_model_config_are_refused_naming_file_and_field(tmp_path, field, value, message):
    r = recognizer()
    r.config.knn_only["train"] = {**SETTINGS, field: value}
    r.save_pretrained(tmp_path / "model")
    with pytest.raises(DataError, match=message) as err:
        EntityRecognizer.from_pretrained(tmp_path / "model")
    assert err.value.field == f"knn_only.train.{field}"
    assert str(err.value).startswith(f"{tmp_path / 'model' / 'knnie_config.json'} field 'knn_only.train.{field}'")


def test_unsound_settings_set_on_a_model_are_refused(extractor):
    with pytest.raises(DataError, match="k must be an integer ≥ 1, not 0"):
        KnnParams(0, 1.0, 0.5)
    with_memory(extractor).config.knn["train"] = {**SETTINGS, "temperature": 0.0}
    with pytest.raises(DataError, match="temperature must be a finite number > 0") as err:
        extractor.predict([short(0)])
    assert err.value.field == "knn.train.temperature"
    extractor.config.knn["train"] = {"k": 2}
    with pytest.raises(DataError, match="needs k, temperature, lam, kernel"):
        extractor.predict([short(0)])


# -- 7: bad training setups -----------------------------------------------------------------------
def test_dev_labels_never_seen_in_training_are_named(caplog):
    extractor = RelationExtractor.new(["born in", *LABELS], max_length=MAX_LENGTH)
    dev = [short(0, "founded"), short(1, "born in")]
    with caplog.at_level(logging.WARNING):
        train(extractor, [short(i, LABELS[i % 2]) for i in range(4)], dev, TrainConfig(epochs=1, batch_size=4))
    assert "1 dev labels never seen in training (no model can learn them): born in" in caplog.text


def test_training_on_one_label_is_refused(extractor):
    with pytest.raises(KnnieError, match=r"too few labels to learn from: 1 \(founded\), at least 2 needed"):
        train(extractor, [short(i, "founded") for i in range(4)], [], TrainConfig(epochs=1))


def test_training_ner_without_any_entity_is_refused():
    all_o = [TaggedSentence(["alpha", "beta"], ["O", "O"])]
    with pytest.raises(KnnieError, match=r"too few entity types to learn from: 0 \(none\), at least 1 needed"):
        train_ner(recognizer(), all_o, [], TrainConfig(epochs=1))


def test_tuning_ner_on_a_dev_set_without_entities_is_refused_and_keeps_the_settings():
    r = recognizer()
    sentences = [TaggedSentence(["alpha", "beta"], ["B-PER", "O"]), TaggedSentence(["gamma"], ["B-LOC"])]
    r.attach_memory("train", r.build_memory(sentences))
    r.config.knn["train"] = dict(SETTINGS)
    before = copy.deepcopy(r.config)
    with pytest.raises(KnnieError, match=r"the dev set has no entity \(every tag is O\)"):
        r.tune([TaggedSentence(["alpha", "beta"], ["O", "O"])])
    assert r.config == before


def test_tuning_on_a_dev_set_of_negatives_only_is_refused_and_keeps_the_settings(extractor):
    with_memory(extractor).config.knn["train"] = dict(SETTINGS)
    extractor.config.negative_label = "other"
    before = copy.deepcopy(extractor.config)
    with pytest.raises(KnnieError, match="every dev example is 'other': micro-F1 without it is 0 at every setting"):
        extractor.tune([short(i, "other") for i in range(3)])
    assert extractor.config == before


@pytest.mark.parametrize("lr", [float("nan"), float("inf"), 0.0, -1e-5])
def test_learning_rates_that_are_not_finite_and_positive_are_refused(lr):
    with pytest.raises(KnnieError, match=f"training setting lr must be a finite number > 0, not {lr}"):
        TrainConfig(lr=lr)
    with pytest.raises(KnnieError, match="training setting head_lr must be a finite number > 0"):
        TrainConfig(head_lr=lr)


def test_cli_training_with_a_nan_learning_rate_saves_nothing(tmp_path):
    tiny = tmp_path / "tiny.jsonl"
    tiny.write_text("".join((SAMPLE / "fewrel8" / "train.jsonl").read_text().splitlines(keepends=True)[:8]))
    code, output = knnie("train", "--train", tiny, "--dev", tiny, "--out", tmp_path / "model", "--epochs", "1",
                         "--lr", "nan")
    assert code == 1
    assert "training setting lr must be a finite number > 0, not nan" in output
    assert not (tmp_path / "model").exists()


def test_training_stops_when_the_loss_is_no_longer_finite():
    model = torch.nn.ModuleDict({"encoder": torch.nn.Linear(2, 2), "head": torch.nn.Linear(2, 2)})
    x = torch.ones(4, 2)

    def loss(idx: list[int], batch: dict) -> torch.Tensor:
        return model["head"](model["encoder"](x)).sum() * float("nan")

    with pytest.raises(KnnieError, match="the training loss became nan at epoch 1, step 1"):
        fit(model, model["encoder"], model["head"], 4, lambda epoch: [([0, 1, 2, 3], {})], loss, None,
            TrainConfig(epochs=2, batch_size=4))
    assert all(torch.isfinite(p).all() for p in model.parameters())  # stopped before the step


# -- 10: outputs checked before any work; a missing label named as such -------------------------
@pytest.mark.parametrize("command", [
    ["predict", "no-model", "--input", SAMPLE / "sentences.jsonl"],
    ["evaluate", "no-model", "--data", SAMPLE / "fewrel8" / "test.jsonl"],
    ["ner", "predict", "no-model", "--input", SAMPLE / "sentences.jsonl"],
    ["ner", "evaluate", "no-model", "--data", SAMPLE / "ner" / "test.txt"],
], ids=["predict", "evaluate", "ner-predict", "ner-evaluate"])
@pytest.mark.parametrize("kind", ["directory", "under-a-file"])
def test_an_output_that_cannot_be_written_is_refused_before_the_model_is_loaded(tmp_path, command, kind):
    (tmp_path / "a-file").write_text("")
    output = tmp_path if kind == "directory" else tmp_path / "a-file" / "out.jsonl"
    code, printed = knnie(*command, "--output", output)
    assert code == 1
    assert ("is a directory" if kind == "directory" else "a-file is a file, not a directory") in printed
    assert "not found" not in printed  # the model directory was never looked at


def test_a_missing_gold_label_is_named_as_missing(extractor):
    with pytest.raises(DataError, match="missing label") as err:
        extractor.evaluate([short(0), short(1, label=None)])
    assert str(err.value).startswith("data.jsonl:2 field 'label'") and "None" not in str(err.value)


# -- 12: over-long examples -------------------------------------------------------------------------
def test_predict_gives_an_over_long_example_no_answer_and_predicts_the_others(extractor, caplog):
    with caplog.at_level(logging.WARNING):
        predictions = with_memory(extractor).predict([short(0), long(0), short(1)], neighbours=2)
    assert [p.label is None for p in predictions] == [False, True, False]
    skipped = predictions[1]
    assert skipped.probability is None and skipped.neighbours == []
    assert skipped.reason.startswith("long.jsonl:1 field 'tokens': head and tail span")
    assert "more than the encoder's limit of 32" in skipped.reason
    assert all(len(p.neighbours) == 2 for p in (predictions[0], predictions[2]))
    assert "no prediction: long.jsonl:1 field 'tokens'" in caplog.text


def test_training_refuses_over_long_examples_all_at_once(extractor):
    train_set = [short(0, "founded"), short(1, "other"), long(0), long(1), long(2)]
    with pytest.raises(DataError, match="3 of 5 examples have head and tail further apart than the encoder's "
                                        "limit of 32 sub-words") as err:
        train(extractor, train_set, [], TrainConfig(epochs=1))
    assert "long.jsonl:1 (" in str(err.value) and "long.jsonl:3 (" in str(err.value)


def test_windowed_examples_get_one_warning_line_per_call(untrained, caplog):
    examples = [long(i, head=48, tail=51) for i in range(5)]  # too long, but the entities are close
    with caplog.at_level(logging.WARNING):
        batch = encode(untrained.tokenizer, examples, set(), MAX_LENGTH)
    assert all(len(ids) <= MAX_LENGTH for ids in batch.input_ids)
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.getMessage().startswith("5 of 5 examples exceed the limit of 32 sub-words")
    assert record.getMessage().endswith("long.jsonl:1, long.jsonl:2, long.jsonl:3 and 2 more")


def test_ner_sentences_split_into_windows_get_one_warning_line_per_call(caplog):
    r = recognizer(max_length=10)
    sentences = [TaggedSentence(["alpha", "beta", "gamma", "delta", "epsilon"], source="s.txt", lines=[i] * 5)
                 for i in (1, 3)]
    with caplog.at_level(logging.WARNING):
        r.windows(sentences)
    [record] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.getMessage() == ("2 of 2 sentences exceed the encoder's 10 sub-tokens and were split into windows: "
                                   "s.txt:1 (5 words, 3 windows), s.txt:3 (5 words, 3 windows)")

