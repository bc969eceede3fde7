"""Zero-shot relation extraction (EMMA): the pooling, loss and scoring pieces on hand-made tensors,
then ONE model trained on the shipped zero-shot sample, shared by the trained-model and CLI tests."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from knnie import Memory, RelationExample, read_relation_types, read_relations
from knnie.cli.main import app
from knnie.data.descriptions import RelationType
from knnie.encoders.representer import TextRepresenter
from knnie.tasks.training import seed_everything
from knnie.tasks.zeroshot import ZeroShotRelationExtractor, ZeroShotTrainConfig, hold_out, train_zeroshot
from knnie.tasks.zeroshot.model import _best_per_relation, abstain_f1, choose_threshold, pair_ids
from knnie.tasks.zeroshot.train import info_nce

SAMPLE = Path(__file__).parents[1] / "data" / "sample" / "zeroshot"
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread for this module (on 2 shared cores one trains several times faster than two),
    restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# -- weighted pooling with two heads (a description's virtual head and tail entities) ---------------
class Lookup(nn.Module):
    """A fake encoder: a token's state is its row of `table`, whatever the context, so that the
    pooling can be computed by hand."""

    def __init__(self, table: list[list[float]]) -> None:
        super().__init__()
        self.table = nn.Embedding.from_pretrained(torch.tensor(table), freeze=True)
        self.config = SimpleNamespace(hidden_size=len(table[0]))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(last_hidden_state=self.table(input_ids))


# token 3 is padding, with huge states: any weight the mask lets through shows
STATES = [[1.0, 0.0], [0.0, 2.0], [4.0, 4.0], [100.0, 100.0]]
IDS = torch.tensor([[0, 1, 2], [0, 1, 3]])
MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])


def two_heads() -> TextRepresenter:
    return TextRepresenter(Lookup(STATES), SimpleNamespace(model_max_length=512), "weighted", heads=2)


def test_zero_initialised_scorers_pool_the_plain_mean_in_both_halves() -> None:
    pooled = two_heads()(IDS, MASK)
    mean = torch.tensor([[5 / 3, 2.0], [0.5, 1.0]])  # (1,0),(0,2),(4,4) and (1,0),(0,2), the pad left out
    torch.testing.assert_close(pooled, torch.cat([mean, mean], dim=1))


def test_each_head_pools_with_its_own_softmax_weights() -> None:
    pooling = two_heads()
    with torch.no_grad():
        pooling.scorer.weight.copy_(torch.tensor([[math.log(2), 0.0], [0.0, math.log(3)]]))
        pooling.scorer.bias.copy_(torch.tensor([5.0, -1.0]))  # a constant per head: softmax ignores it
    # head 0 scores a token x·ln 2: weights 2, 1, 16 (exp of 1, 0, 4 ln 2);
    # head 1 scores y·ln 3: weights 1, 9, 81 (exp of 0, 2, 4 ln 3); the padding gets none
    head = torch.tensor([[2 * 1 + 16 * 4, 1 * 2 + 16 * 4], [2 * 1, 1 * 2]]) / torch.tensor([[19.0], [3.0]])
    tail = torch.tensor([[1 * 1 + 81 * 4, 9 * 2 + 81 * 4], [1 * 1, 9 * 2]]) / torch.tensor([[91.0], [10.0]])
    torch.testing.assert_close(pooling(IDS, MASK), torch.cat([head, tail], dim=1))


def test_gradients_reach_both_scorers() -> None:
    pooling = two_heads()
    (pooling(IDS, MASK) * torch.tensor([1.0, -1.0, 2.0, 1.0])).sum().backward()
    grad = pooling.scorer.weight.grad
    assert grad is not None and torch.isfinite(grad).all()
    assert (grad.abs().sum(dim=1) > 0).all()  # a row per head


# -- the recall loss --------------------------------------------------------------------------------
def test_info_nce_is_cross_entropy_over_cosines_by_temperature() -> None:
    queries = torch.tensor([[1.0, 0.0], [0.0, 2.0]], requires_grad=True)
    keys = torch.tensor([[3.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    loss, cos = info_nce(queries, keys, torch.tensor([0, 2]), temperature=0.5)
    r = 1 / math.sqrt(2)
    torch.testing.assert_close(cos, torch.tensor([[1.0, 0.0, r], [0.0, 1.0, r]]))
    # logits cos / 0.5: (2, 0, 2r) and (0, 2, 2r); right keys 0 and 2
    first = -2 + math.log(math.exp(2) + 1 + math.exp(2 * r))
    second = -2 * r + math.log(1 + math.exp(2) + math.exp(2 * r))
    assert loss.item() == pytest.approx((first + second) / 2, rel=1e-6)
    loss.backward()
    assert queries.grad.abs().sum() > 0 and keys.grad.abs().sum() > 0


# -- the cross-encoder's input, abstain calibration, the relation index -------------------------------
def test_pair_ids_cuts_the_description_never_the_instance() -> None:
    instance, description = [101, 5, 6, 102], [101, 7, 8, 9, 102]
    assert pair_ids(instance, description, 8) == [101, 5, 6, 102, 7, 8, 9, 102]
    assert pair_ids(instance, description, 20) == [101, 5, 6, 102, 7, 8, 9, 102]
    assert pair_ids(instance, description, 6) == [101, 5, 6, 102, 7, 102]
    assert pair_ids(instance, description, 5) == instance  # no room for a word of the description
    assert pair_ids(instance, description, 3) == instance


# three dev instances scored with their relation among the candidates (best score, whether it is
# right) and with it left out (any answer is wrong)
BEST_IN, RIGHT, BEST_OUT = np.array([0.9, 0.8, 0.3]), np.array([True, True, False]), np.array([0.4, 0.2, 0.35])


@pytest.mark.parametrize(("threshold", "micro"), [
    (0.0, 4 / 9),  # all 6 answered, 2 right: P 1/3, R 2/3
    (0.35, 4 / 7),  # 4 answered (0.3 and 0.2 are not): P 1/2, R 2/3
    (0.8, 4 / 5),  # only the 2 right ones answered: P 1, R 2/3
    (0.9, 1 / 2),  # 1 answered: P 1, R 1/3
])
def test_abstain_f1_by_hand(threshold: float, micro: float) -> None:
    assert abstain_f1(BEST_IN, RIGHT, BEST_OUT, threshold)[0] == pytest.approx(micro)


def test_choose_threshold_keeps_the_best_micro_f1() -> None:
    assert choose_threshold(BEST_IN, RIGHT, BEST_OUT) == pytest.approx((0.8, 0.8))
    # none-F1 at 0.8: 3 of the 3 left-out instances abstain, and 1 with its relation: P 3/4, R 1
    assert abstain_f1(BEST_IN, RIGHT, BEST_OUT, 0.8)[1] == pytest.approx(6 / 7)
    # always wrong: micro-F1 is 0 at every threshold, and the lowest (never abstain) is kept
    assert choose_threshold(BEST_IN, np.zeros(3, bool), BEST_OUT) == (0.0, 0.0)


def relation_memory() -> Memory:
    """Four 2-d entries: B, A, B, C (index labels sorted: A, B, C)."""
    keys = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]], np.float32)
    return Memory.from_labels(keys, ["B", "A", "B", "C"], [{}] * 4, "fp", index="flat", metric="cosine")


def test_best_per_relation_keeps_each_relations_nearest_entry() -> None:
    # a search of 3 entries for 2 queries; squared distances of unit vectors are 2 − 2·cos
    cos = np.array([[0.9, 0.8, 0.5], [1.0, 0.7, -0.5]])
    search = ((2 - 2 * cos).astype(np.float32), np.array([[2, 0, 1], [3, 1, 0]]))
    every = np.ones(4, bool)
    best = _best_per_relation(search, relation_memory(), ["C", "A", "B"], every)  # relations in another order
    np.testing.assert_allclose(best, [[-np.inf, 0.5, 0.9], [1.0, 0.7, -0.5]], atol=1e-6)
    # only entries 0, 1 and 3 (the second B left out): the first query's best B is then entry 0
    some = np.array([True, True, False, True])
    best = _best_per_relation(search, relation_memory(), ["C", "A", "B"], some)
    np.testing.assert_allclose(best, [[-np.inf, 0.5, 0.8], [1.0, 0.7, -0.5]], atol=1e-6)


def test_best_per_relation_of_a_real_search_is_the_max_cosine() -> None:
    index = relation_memory()
    best = _best_per_relation(index.search(np.array([[1.0, 0.0]], np.float32), 4, exact=True), index,
                              ["A", "B", "C"], np.ones(4, bool))
    np.testing.assert_allclose(best, [[0.0, 1.0, -1.0]], atol=1e-6)  # B: max(cos 1, cos 45° = 0.71)


def test_hold_out_keeps_whole_relations_seeded() -> None:
    examples = read_relations(SAMPLE / "train.jsonl")  # 8 relations × 30
    train, dev = hold_out(examples, 3, seed=1)
    seen, held = {ex.label for ex in train}, {ex.label for ex in dev}
    assert len(held) == 3 and len(dev) == 90 and not seen & held and len(train) + len(dev) == len(examples)
    assert hold_out(examples, 3, seed=1) == (train, dev)
    assert {ex.label for ex in hold_out(examples, 3, seed=2)[1]} != held  # 56 possible choices
    few = [ex for ex in examples if ex.label in sorted(seen)[:4]]  # 4 relations: 2 would be left to train on
    assert hold_out(few, 3, seed=1) == (few, [])


# -- one model trained on the sample (slow) -----------------------------------------------------------
@dataclasses.dataclass
class TrainedZS:
    """The extractor trained on the sample's seen relations (calibrated on dev's), and where it was saved."""

    model: ZeroShotRelationExtractor
    path: Path
    test: list[RelationExample]
    unseen: list[RelationType]  # the 5 relations of test.jsonl


def relations_of(examples: list[RelationExample]) -> list[RelationType]:
    labels = {ex.label for ex in examples}
    return [r for r in read_relation_types(SAMPLE / "relations.json") if r.id in labels]


@pytest.fixture(scope="module")
def trained_zs(tmp_path_factory) -> TrainedZS:
    """1 epoch over the 240 training sentences (8 relations): about 2 minutes on one thread."""
    train, dev, test = (read_relations(SAMPLE / f"{split}.jsonl") for split in ("train", "dev", "test"))
    seed_everything(0)  # the new scorer's initial weights, whichever tests ran before
    model = ZeroShotRelationExtractor.new(device="cpu")
    train_zeroshot(model, train, relations_of(train), dev, relations_of(dev), ZeroShotTrainConfig(epochs=1))
    path = tmp_path_factory.mktemp("zeroshot") / "model"
    model.save_pretrained(path)
    return TrainedZS(model, path, test, relations_of(test))


def fused_top1(model: ZeroShotRelationExtractor, examples: list[RelationExample], relations: list[RelationType],
               support: list[RelationExample] = ()) -> np.ndarray:
    """Whether each instance's best fused candidate is its relation."""
    s = model.scores(examples, relations, support)
    return s.top[np.arange(len(examples)), s.fused.argmax(1)] == model.gold_ids(examples, relations)


# measured with this fixture (seed 42): 0.91 of the 75 test instances right by recall alone and fused alike
# (macro-F1 0.91), recall@3 0.99; with seed 7: 0.73; off the shelf: 0.51; chance among the 5 unseen relations: 0.2
TOP1_AT_LEAST = 0.6


def test_unseen_relations_are_ranked_first_far_above_chance(trained_zs: TrainedZS) -> None:
    report = trained_zs.model.evaluate(trained_zs.test, trained_zs.unseen)
    assert report["recall"]["accuracy"] >= TOP1_AT_LEAST
    assert report["fused"]["accuracy"] >= TOP1_AT_LEAST
    assert report["recall@3"] >= report["recall"]["accuracy"]


def test_save_and_load_give_identical_predictions(trained_zs: TrainedZS) -> None:
    loaded = ZeroShotRelationExtractor.from_pretrained(trained_zs.path, device="cpu")
    assert loaded.config.abstain_threshold == trained_zs.model.config.abstain_threshold is not None
    before, after = (m.predict(trained_zs.test, trained_zs.unseen, abstain="auto") for m in (trained_zs.model, loaded))
    assert [p.label for p in after] == [p.label for p in before]
    assert [[c.id for c in p.candidates] for p in after] == [[c.id for c in p.candidates] for p in before]
    scores = [[[c.recall, c.cross, c.fused] for p in run for c in p.candidates] for run in (before, after)]
    np.testing.assert_allclose(scores[1], scores[0], atol=1e-6)


def test_description_cache_is_reused_and_only_a_changed_description_encoded(trained_zs: TrainedZS,
                                                                             tmp_path: Path) -> None:
    path = shutil.copytree(trained_zs.path, tmp_path / "model")
    few, unseen = trained_zs.test[:4], trained_zs.unseen
    first = ZeroShotRelationExtractor.from_pretrained(path, device="cpu")
    first.predict(few, unseen)
    assert first.encoded_descriptions == 5  # the saved cache holds dev's descriptions (calibration), not these
    first.save_cache(path)
    second = ZeroShotRelationExtractor.from_pretrained(path, device="cpu")
    vectors = second.describe(unseen)
    assert second.encoded_descriptions == 0
    edited = [dataclasses.replace(r, description=r.description + " (as seen from Earth)") if r.id == "P59" else r
              for r in unseen]
    second.predict(few, edited)
    assert second.encoded_descriptions == 1
    now, changed = second.describe(edited), np.array([r.id == "P59" for r in unseen])
    np.testing.assert_array_equal(now[~changed], vectors[~changed])
    assert not np.allclose(now[changed], vectors[changed])


def test_abstains_when_no_listed_relation_fits(trained_zs: TrainedZS) -> None:
    """A constellation sentence against three relations with one description (mother's): both stages
    split their probability evenly among them, so no fused score passes 1/6 + 1/6 = 1/3, whatever
    the weights; with constellation listed instead of one of them, the same threshold answers it."""
    model, instance = trained_zs.model, next(ex for ex in trained_zs.test if ex.label == "P59")
    known = {r.id: r for r in read_relation_types(SAMPLE / "relations.json")}
    mothers = [dataclasses.replace(known["P25"], id=f"mother-{i}") for i in range(3)]
    assert model.predict([instance], mothers, abstain="off")[0].label in {r.id for r in mothers}
    [none] = model.predict([instance], mothers, abstain=0.4)
    assert none.label is None and none.score <= 1 / 3 + 1e-6
    assert none.reason.startswith("none of these: best fused score") and len(none.candidates) == 3
    assert none.to_row(instance)["prediction"] is None and "reason" in none.to_row(instance)
    [answered] = model.predict([instance], [known["P59"], *mothers[:2]], abstain=0.4)
    assert answered.label == "P59" and answered.score >= 0.4 and answered.reason is None


def test_support_examples_correct_wrong_predictions(trained_zs: TrainedZS) -> None:
    model = trained_zs.model
    wrong = [ex for ex, right in zip(trained_zs.test, fused_top1(model, trained_zs.test, trained_zs.unseen))
             if not right]
    assert wrong  # 7 of 75 with this fixture
    assert fused_top1(model, wrong, trained_zs.unseen, support=wrong).all()
    [p] = model.predict(wrong[:1], trained_zs.unseen, wrong[:1], abstain="off")
    assert p.label == wrong[0].label
    assert p.neighbours[0].memory == "example" and p.neighbours[0].distance < 1e-4  # the instance itself


# -- the CLI ----------------------------------------------------------------------------------------
def knnie(*args: object, ok: bool = True):
    result = runner.invoke(app, [str(a) for a in args])
    if ok:
        assert result.exit_code == 0, result.output
    return result


def said(result) -> str:
    """The command's output with line wrapping undone."""
    return " ".join(result.output.split())


def write_relations(path: Path, relations: list[RelationType]) -> Path:
    """knnie's JSON-lines relations file."""
    path.write_text("".join(json.dumps({"id": r.id, "name": r.name, "description": r.description}) + "\n"
                            for r in relations))
    return path


@pytest.fixture(scope="module")
def cli_model(trained_zs: TrainedZS, tmp_path_factory) -> Path:
    """A copy of the trained model for the CLI tests (which write its description cache)."""
    return shutil.copytree(trained_zs.path, tmp_path_factory.mktemp("zeroshot-cli") / "model")


def test_cli_predict_writes_both_stages_and_keeps_the_cache(cli_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "predictions.jsonl"
    args = ("zeroshot", "predict", cli_model, "--relations", SAMPLE / "relations.json", "--input",
            SAMPLE / "test.jsonl", "--output", out)
    first = knnie(*args, "--show", "2")
    assert "descriptions: 13 encoded, 3 reused" in said(first)  # the model's cache held dev's 3
    assert said(first).count("→") == 2 and "recall" in first.output and "fused" in first.output
    ids = {r.id for r in read_relation_types(SAMPLE / "relations.json")}
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 75
    for row in rows:
        assert row["prediction"] in ids or row["reason"].startswith("none of these")
        assert [set(c) for c in row["candidates"]] == [{"id", "name", "recall", "cross", "fused"}] * 3
        assert row["score"] == max(c["fused"] for c in row["candidates"])
        assert len(row["neighbours"]) == 3 and row["neighbours"][0]["memory"] == "description"
    assert "descriptions: 0 encoded, 16 reused" in said(knnie(*args, "--abstain", "off"))
    assert all(json.loads(line)["prediction"] in ids for line in out.read_text().splitlines())


def test_cli_evaluate_reports_both_stages(cli_model: Path, trained_zs: TrainedZS, tmp_path: Path) -> None:
    report_path = tmp_path / "report.json"
    result = knnie("zeroshot", "evaluate", cli_model, "--relations",
                   write_relations(tmp_path / "unseen.jsonl", trained_zs.unseen), "--data", SAMPLE / "test.jsonl",
                   "--output", report_path)
    assert "recall only" in result.output and "recall + cross-encoder" in result.output and "recall@3" in result.output
    report = json.loads(report_path.read_text())
    assert (report["instances"], report["relations"]) == (75, 5)
    assert report["fused"]["macro_f1"] == pytest.approx(
        trained_zs.model.evaluate(trained_zs.test, trained_zs.unseen)["fused"]["macro_f1"], abs=1e-6)
    assert f"{100 * report['fused']['macro_f1']:.2f}" in result.output


def bad_relations(tmp_path: Path, trained_zs: TrainedZS) -> tuple[list[object], str]:
    (tmp_path / "rels.jsonl").write_text('{"id": "P26", "name": "spouse", "description": "husband or wife"}\n'
                                         '{"id": "P59", "name": "constellation"}\n')
    return (["predict", "--relations", "rels.jsonl", "--input", SAMPLE / "test.jsonl", "--output", "p.jsonl"],
            "rels.jsonl:2 field 'description': missing")


def missing_relation(tmp_path: Path, trained_zs: TrainedZS) -> tuple[list[object], str]:
    shutil.copy(SAMPLE / "test.jsonl", tmp_path / "test.jsonl")
    write_relations(tmp_path / "four.jsonl", [r for r in trained_zs.unseen if r.id != "P26"])
    line = next(n for n, ex in enumerate(trained_zs.test, 1) if ex.label == "P26")
    return (["evaluate", "--relations", "four.jsonl", "--data", "test.jsonl"],
            f"test.jsonl:{line} field 'label': relation 'P26' is not in the relations file")


def unmarked_entities(tmp_path: Path, trained_zs: TrainedZS) -> tuple[list[object], str]:
    (tmp_path / "input.jsonl").write_text(
        '{"text": "Vega is in Lyra .", "head": {"start": 0, "end": 4}, "tail": {"start": 11, "end": 15}}\n'
        '{"text": "Vega is in Lyra ."}\n')
    return (["predict", "--relations", SAMPLE / "relations.json", "--input", "input.jsonl", "--output", "p.jsonl"],
            "input.jsonl:2 field 'head': missing")


def support_label(tmp_path: Path, trained_zs: TrainedZS) -> tuple[list[object], str]:
    shutil.copy(SAMPLE / "train.jsonl", tmp_path / "support.jsonl")  # examples of seen relations
    label = read_relations(SAMPLE / "train.jsonl")[0].label
    return (["evaluate", "--relations", write_relations(tmp_path / "unseen.jsonl", trained_zs.unseen), "--data",
             SAMPLE / "test.jsonl", "--support", "support.jsonl"],
            f"support.jsonl:1 field 'label': support example of relation '{label}', which is not in the relations")


@pytest.mark.parametrize("case", [bad_relations, missing_relation, unmarked_entities, support_label])
def test_cli_bad_input_names_the_file_and_the_entry(case, cli_model: Path, trained_zs: TrainedZS, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # short relative paths in the messages
    args, message = case(tmp_path, trained_zs)
    result = knnie("zeroshot", args[0], cli_model, *args[1:], ok=False)
    assert result.exit_code == 1 and f"error: {message}" in said(result)
    assert "Traceback" not in result.output


def sample_subset(path: Path, relations: int, per_relation: int) -> Path:
    """The first `per_relation` training sentences of the sample's first `relations` relations."""
    keep, rows = {}, []
    for line in (SAMPLE / "train.jsonl").read_text().splitlines():
        label = json.loads(line)["label"]
        if (label in keep or len(keep) < relations) and keep.setdefault(label, 0) < per_relation:
            keep[label] += 1
            rows.append(line + "\n")
    path.write_text("".join(rows))
    return path


@pytest.mark.slow
def test_cli_train_holds_out_three_relations_without_dev(tmp_path: Path) -> None:
    out = tmp_path / "model"
    result = knnie("zeroshot", "train", "--train", sample_subset(tmp_path / "train.jsonl", 5, 4), "--relations",
                   SAMPLE / "relations.json", "--out", out, "--epochs", "1", "--batch-size", "8")
    config = json.loads((out / "knnie_config.json").read_text())
    held = config["calibration"]["relations"]
    assert len(held) == 3 and f"relations {', '.join(held)} (12 examples) held out of training" in said(result)
    assert f"abstain threshold {config['abstain_threshold']:.3f}" in said(result)
    training = json.loads((out / "training.json").read_text())
    assert training["dev"].endswith(f"relations {', '.join(held)} held out") and "dev_f1" in training["history"][0]
    assert (out / "memories" / "descriptions" / "memory.json").is_file()  # calibration encoded dev's descriptions


@pytest.mark.slow
def test_cli_train_with_too_few_relations_to_hold_out_trains_without_dev(tmp_path: Path,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "model"
    result = knnie("zeroshot", "train", "--train", sample_subset(tmp_path / "train.jsonl", 4, 3), "--relations",
                   SAMPLE / "relations.json", "--out", out, "--epochs", "1")
    assert "training without dev, the abstain threshold is uncalibrated" in caplog.text
    assert "no dev set: the last epoch is kept" in said(result) and "abstain threshold" not in result.output
    assert json.loads((out / "knnie_config.json").read_text())["abstain_threshold"] is None
    assert json.loads((out / "training.json").read_text())["dev"] is None


def test_cli_train_refuses_bad_relations_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    sample_subset(tmp_path / "train.jsonl", 5, 2)
    first = read_relations(tmp_path / "train.jsonl")[0].label
    write_relations(tmp_path / "rels.jsonl", [r for r in read_relation_types(SAMPLE / "relations.json")
                                               if r.id != first])
    result = knnie("zeroshot", "train", "--train", "train.jsonl", "--relations", "rels.jsonl", "--out", "model",
                   ok=False)
    assert result.exit_code == 1
    assert f"error: train.jsonl:1 field 'label': relation '{first}' is not in the relations file" in said(result)
    result = knnie("zeroshot", "train", "--train", "train.jsonl", "--dev", "train.jsonl", "--relations",
                   SAMPLE / "relations.json", "--out", "model", ok=False)
    assert result.exit_code == 1 and "error: dev relations must be held out from training" in said(result)
    assert not (tmp_path / "model").exists()
