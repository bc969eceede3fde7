"""Two-stage pre-training (`knnie fewshot pretrain`): the MSLM masks, the SCL loss and sampler, bad input,
and a pre-trained encoder directory loading where knnie's training and headless models load encoders."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer
from typer.testing import CliRunner

from knnie import DataError, KnnieError, RelationExtractor, example_from_text, read_relations
from knnie.cli.main import app
from knnie.encoders.loading import resolve_encoder
from knnie.encoders.markers import marker_tokens
from knnie.tasks.fewshot.pretrain import (
    IGNORE,
    PretrainConfig,
    check_relations,
    draw_mask,
    mask_units,
    read_triggers,
    relation_batches,
    supervised_infonce,
)
from knnie.tasks.training import seed_everything
from tests.helpers import write_lines

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "fewrel8"
runner = CliRunner()
TEXT = "Ada Lovelace was born in London ."
ONLY = {"p_relation": 0.0, "p_entity": 0.0, "p_other": 0.0}


@pytest.fixture(scope="module")
def tokenizer():
    tok = AutoTokenizer.from_pretrained(resolve_encoder())
    tok.add_special_tokens({"additional_special_tokens": marker_tokens([])})
    return tok


@pytest.fixture(scope="module")
def ada():
    return example_from_text(TEXT, (0, 12, None), (25, 31, None), "born in")


def flat(output: str) -> str:
    """CLI output with the console's line wrapping undone."""
    return " ".join(output.split())


def masked_words(tokenizer, ex, trigger=None, seed=0, **p) -> tuple[str, list[int], list[int]]:
    """The masked sub-words decoded, and the masked ids and labels."""
    units = mask_units(tokenizer, ex, trigger, PretrainConfig(**{**ONLY, **p}))
    ids, labels = draw_mask(units, random.Random(seed), tokenizer.mask_token_id)
    return tokenizer.decode([t for t in labels if t != IGNORE]), ids, labels


def test_every_word_and_no_marker_is_masked_at_p_one_and_nothing_at_p_zero(tokenizer, ada):
    words, ids, labels = masked_words(tokenizer, ada, p_relation=1.0, p_entity=1.0, p_other=1.0)
    assert words == "ada lovelace was born in london."
    original = tokenizer([w for w in ["[H]", "Ada", "Lovelace", "[/H]", "was", "born", "in", "[T]", "London", "[/T]",
                                      "."]], is_split_into_words=True)["input_ids"]
    assert [t for t, label in zip(ids, labels, strict=True) if label == IGNORE] == \
        [t for t in original if t in tokenizer.all_special_ids]  # CLS, SEP and the four markers stay
    assert all(ids[i] == tokenizer.mask_token_id and labels[i] == original[i] for i in range(len(ids))
               if labels[i] != IGNORE)
    assert masked_words(tokenizer, ada)[0] == ""


def test_the_relation_span_is_the_words_between_the_entities_or_the_explanations_trigger(tokenizer, ada, tmp_path):
    assert masked_words(tokenizer, ada, p_relation=1.0)[0] == "was born in"
    assert masked_words(tokenizer, ada, p_entity=1.0)[0] == "ada lovelace london"
    assert masked_words(tokenizer, ada, p_other=1.0)[0] == "."
    row = {**ada.to_row(), "label": "born in", "explanation": "born names a birthplace",
           "trigger": {"text": "born", "start": 17, "end": 21}}
    triggers = read_triggers(write_lines(tmp_path / "e.jsonl", row), [ada])
    assert triggers == {(TEXT, 0, 12, 25, 31): [3]}
    assert masked_words(tokenizer, ada, [3], p_relation=1.0)[0] == "born"
    assert masked_words(tokenizer, ada, [3], p_other=1.0)[0] == "was in."


def test_an_entity_span_is_masked_whole_or_not_at_all(tokenizer, ada):
    seen = {masked_words(tokenizer, ada, seed=s, p_entity=0.5)[0] for s in range(40)}
    assert seen == {"", "ada lovelace", "london", "ada lovelace london"}


def test_a_bad_explanations_file_names_its_line(tmp_path, ada):
    other = {**ada.to_row(), "head": {"text": "Ada", "start": 0, "end": 3}, "explanation": "x", "trigger": None}
    path = write_lines(tmp_path / "e.jsonl", {**ada.to_row(), "explanation": "x", "trigger": None}, other)
    with pytest.raises(DataError, match=r"e.jsonl:2: names no example of the data .*head 0-3, tail 25-31\): were "
                                        "the explanations made for another data file"):
        read_triggers(path, [ada])
    bad = {**ada.to_row(), "explanation": "x", "trigger": {"text": "born", "start": 16, "end": 20}}
    with pytest.raises(DataError, match=r"e2.jsonl:1 field 'trigger': trigger .* is not the text at its offsets"):
        read_triggers(write_lines(tmp_path / "e2.jsonl", bad), [ada])
    with pytest.raises(DataError, match=r"e3.jsonl:1: needs text, head \{start, end\} and tail"):
        read_triggers(write_lines(tmp_path / "e3.jsonl", {"text": TEXT}), [ada])


def test_the_infonce_loss_is_the_hand_computed_one():
    vectors = torch.tensor([[2.0, 0.0], [1.0, 0.0], [0.0, 3.0]])  # cosine: 1 within relation a, 0 across
    loss = supervised_infonce(vectors, torch.tensor([0, 0, 1]), temperature=1.0)
    assert loss.item() == pytest.approx(math.log(1 + math.exp(-1)))  # anchors 0 and 1; 2 has no positive
    assert supervised_infonce(vectors, torch.tensor([0, 0, 1]), 0.5).item() == pytest.approx(math.log(1 + math.exp(-2)))
    with pytest.raises(KnnieError, match="no example has another of its relation"):
        supervised_infonce(vectors, torch.tensor([0, 1, 2]), 1.0)


def test_the_scl_loss_falls_on_a_toy_batch():
    torch.manual_seed(0)
    vectors = torch.nn.Parameter(torch.randn(12, 8))
    labels = torch.tensor([0, 1, 2] * 4)
    optimizer = torch.optim.Adam([vectors], lr=0.05)
    losses = []
    for _ in range(15):
        loss = supervised_infonce(vectors, labels, 0.1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0] and all(b < a for a, b in zip(losses, losses[5:], strict=False))


def test_scl_batches_hold_several_examples_of_several_relations():
    labels = ["a"] * 9 + ["b"] * 6 + ["c"] * 5 + ["d"]
    batches = relation_batches(labels, per_relation=4, batch_size=8, seed=3)
    used = [i for b in batches for i in b]
    assert len(used) == len(set(used)) and len(used) >= 17  # each once; at most a group of one relation left over
    for b in batches:
        counts = {label: sum(labels[i] == label for i in b) for label in {labels[i] for i in b}}
        assert len(counts) == 2 and max(counts.values()) <= 4 and len(b) <= 8
    assert any(min(sum(labels[i] == x for i in b) for x in "abc" if any(labels[i] == x for i in b)) >= 2
               for b in batches)
    assert relation_batches(labels, 4, 8, 3) == batches and relation_batches(labels, 4, 8, 4) != batches
    assert len({labels[i] for i in relation_batches(labels, 2, 8, 0)[0]}) == 4  # 8 // 2 relations a batch



def test_data_of_a_single_relation_or_unlabelled_is_refused(ada):
    with pytest.raises(DataError, match=r"needs at least two relations with two examples or more each .* the data "
                                        r"has 1 relation\(s\) \(born in\), 1 of them"):
        check_relations([ada, ada, ada])
    unlabelled = example_from_text(TEXT, (0, 12, None), (25, 31, None))
    with pytest.raises(DataError, match="1 examples have no relation label"):
        check_relations([ada, unlabelled])
    with pytest.raises(KnnieError, match="both stages have 0 epochs"):
        PretrainConfig(mslm_epochs=0, scl_epochs=0)
    with pytest.raises(KnnieError, match="batch_size 6 holds fewer than two relations of 4 examples"):
        PretrainConfig(batch_size=6)
    with pytest.raises(KnnieError, match="p_entity must be a probability"):
        PretrainConfig(p_entity=1.5)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """4 relations × 4 sample examples."""
    rows = [json.loads(line) for line in (SAMPLE / "train.jsonl").read_text().splitlines()]
    keep = sorted({r["label"] for r in rows})[:4]
    picked = [r for label in keep for r in [r for r in rows if r["label"] == label][:4]]
    return write_lines(tmp_path_factory.mktemp("tiny") / "tiny.jsonl", *picked)


@pytest.fixture(scope="module")
def pretrained(tiny, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pretrained") / "enc"
    ex = read_relations(tiny)[0]
    text, offsets = ex.located()
    word = next(i for i in range(len(ex.tokens)) if not (ex.head.start <= i < ex.head.end or
                                                         ex.tail.start <= i < ex.tail.end))
    start, end = offsets[word]
    explained = write_lines(out.parent / "e.jsonl", {**ex.to_row(), "label": ex.label, "explanation": "x",
                                                      "trigger": {"text": text[start:end], "start": start, "end": end}})
    result = runner.invoke(app, ["fewshot", "pretrain", "--data", str(tiny), "--out", str(out), "--mslm-epochs", "1",
                                 "--explanations", str(explained),
                                 "--scl-epochs", "2", "--batch-size", "8", "--per-relation", "2", "--max-length", "48",
                                 "--lr", "1e-4", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "mslm epoch 1/1: training loss" in result.output and "scl epoch 2/2" in result.output
    return out


@pytest.mark.slow  # pre-trains and trains (about a minute on a shared 2-core CPU)
def test_the_pretrained_directory_records_its_run_and_its_markers_learned(pretrained):
    record = json.loads((pretrained / "pretraining.json").read_text())
    assert record["data"]["examples"] == 16 and record["data"]["relations"] == 4
    assert record["data"]["triggers_used"] == 1
    assert set(record["stages"]) == {"mslm", "scl"} and len(record["stages"]["scl"]["history"]) == 2
    assert not any(p.name.startswith("mlm") for p in pretrained.iterdir())  # the MLM head is not saved
    seed_everything(42)  # the run's seed: the same fresh marker embeddings as it started from
    fresh = RelationExtractor.headless(device="cpu").representer
    seed_everything(42)
    again = RelationExtractor.headless(device="cpu").representer
    loaded = RelationExtractor.headless(encoder=str(pretrained), device="cpu").representer
    assert len(loaded.tokenizer) == len(fresh.tokenizer)  # the markers are there already, none added
    marker_ids = loaded.tokenizer.convert_tokens_to_ids(marker_tokens([]))
    before = fresh.encoder.get_input_embeddings().weight[marker_ids]
    after = loaded.encoder.get_input_embeddings().weight[marker_ids]
    assert torch.equal(before, again.encoder.get_input_embeddings().weight[marker_ids])
    assert not torch.allclose(before, after)


@pytest.mark.slow  # pre-trains and trains (about a minute on a shared 2-core CPU)
def test_the_pretrained_encoder_trains_a_model_and_serves_a_headless_one(pretrained, tiny, tmp_path):
    result = runner.invoke(app, ["train", "--train", str(tiny), "--dev", str(tiny), "--encoder", str(pretrained),
                                 "--epochs", "1", "--batch-size", "8", "--max-length", "64", "--out",
                                 str(tmp_path / "model"), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    model = RelationExtractor.from_pretrained(tmp_path / "model", device="cpu")
    examples = read_relations(tiny)
    assert len(model.labels) == 4 and len(model.predict(examples[:3])) == 3
    headless = RelationExtractor.headless(encoder=str(pretrained), max_length=64, device="cpu")
    headless.attach_memory("support", headless.build_memory(examples[::2]))
    predictions = headless.predict(examples[1::2], neighbours=1)
    assert all(p.label in model.labels for p in predictions)


def test_the_cli_refuses_bad_input_before_writing(tiny, tmp_path):
    one = write_lines(tmp_path / "one.jsonl", *[json.loads(line) for line in tiny.read_text().splitlines()[:4]])
    out = tmp_path / "enc"
    result = runner.invoke(app, ["fewshot", "pretrain", "--data", str(one), "--out", str(out)])
    assert result.exit_code == 1 and "contrastive learning needs at least two relations" in flat(result.output)
    assert not out.exists()
    stranger = {**example_from_text(TEXT, (0, 12, None), (25, 31, None)).to_row(), "explanation": "x",
                "trigger": None}
    result = runner.invoke(app, ["fewshot", "pretrain", "--data", str(tiny), "--out", str(out), "--explanations",
                                 str(write_lines(tmp_path / "e.jsonl", stranger))])
    assert result.exit_code == 1 and "e.jsonl:1: names no example of the data" in flat(result.output)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    result = runner.invoke(app, ["fewshot", "pretrain", "--data", str(tiny), "--out", str(tmp_path / "mine")])
    assert result.exit_code == 1 and "not a pre-trained encoder" in flat(result.output)
