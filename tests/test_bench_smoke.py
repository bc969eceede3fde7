"""Each benchmark script runs end to end on a tiny slice: no figure is asserted, but every row must be
a finite number over at least one run, and where a script also keeps per-seed results, its rows must be
their mean.

The benchmarks read ../shared/data; where it is absent these tests are skipped."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
pytestmark = pytest.mark.skipif(not (ROOT.parent / "shared" / "data").is_dir(), reason="../shared/data absent")
sys.path.insert(0, str(ROOT / "bench"))


@pytest.fixture(autouse=True)
def in_repo_root(monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # the scripts read ../shared/data relative to the repository root


def check_results(path: Path) -> dict:
    report = json.loads(path.read_text())
    assert {"command", "machine", "encoder", "seeds", "rows"} <= set(report)
    assert report["rows"] and all({"dataset", "setting", "method", "metric", "mean", "std", "n"} <= set(r)
                                  for r in report["rows"])
    for r in report["rows"]:
        assert math.isfinite(r["mean"]) and r["std"] >= 0 and r["n"] >= 1, r
    table = path.with_suffix(".md").read_text()
    assert all(r["method"] in table for r in report["rows"])
    return report


def test_tuning_speed(tmp_path: Path) -> None:
    import tuning_speed

    report = tuning_speed.main(["--limit-train", "40", "--limit-dev", "20", "--train-subset", "40", "--repeats", "1",
                                "--out-dir", str(tmp_path)])
    assert report["same_best"] and report["scores_equal"]  # exactness, not a figure
    check_results(tmp_path / "tuning_speed.json")


def test_knn_re(tmp_path: Path) -> None:
    import knn_re

    knn_re.main(["--dataset", "semeval", "--limit", "40", "--seeds", "0", "--epochs", "1", "--out-dir", str(tmp_path),
                 "--no-reuse"])
    report = check_results(tmp_path / "knn_re_semeval.json")
    micro = {r["method"]: r["mean"] for r in report["rows"] if r["metric"].startswith("test micro-F1")}
    per_seed = report["per_seed"][0]["test"]
    assert micro[knn_re.METHODS["vanilla"]] == pytest.approx(100 * per_seed["vanilla"]["micro_f1"])
    assert micro[knn_re.METHODS["knn_re"]] == pytest.approx(100 * per_seed["knn_re"]["micro_f1"])


def test_knn_re_ds(tmp_path: Path) -> None:
    import knn_re_ds

    # the splits hold 50 train examples of each relation in turn: 60 give two relations (one is refused)
    knn_re_ds.main(["--setting", "fewrel-pubmed", "--limit", "60", "--seeds", "0", "--epochs", "1",
                    "--out-dir", str(tmp_path), "--no-reuse"])
    check_results(tmp_path / "knn_re_ds_fewrel-pubmed.json")


def test_live_memory(tmp_path: Path) -> None:
    import live_memory

    live_memory.main(["--seeds", "0", "--train-per-relation", "2", "--dev-per-relation", "2", "--test-per-relation",
                      "2", "--epochs", "1", "--shots", "2", "--draws", "1", "--out-dir", str(tmp_path), "--no-reuse"])
    report = check_results(tmp_path / "live_memory.json")
    held = {(r["setting"], r["method"]): r["mean"] for r in report["rows"] if "held-out" in r["metric"]}
    assert held[("before adding (K=0)", "vanilla (head only)")] == 0  # the head cannot name a held-out relation
    run = report["runs"][0]["added"][0]
    assert held[("K=2 added per held-out relation", live_memory.NAMES["plain"])] == run["plain"]["held-out"]


def test_memory_scale(tmp_path: Path) -> None:
    import memory_scale

    memory_scale.main(["--sizes", "1000", "--limit", "100", "--batches", "2", "--out-dir", str(tmp_path)])
    check_results(tmp_path / "memory_scale.json")
    memory_scale.main(["--streaming-sizes", "3000", "--limit", "100", "--stream-batches", "1", "--singles", "2",
                       "--nprobe", "8", "--rerank", "64", "--work-dir", str(tmp_path / "runs"),
                       "--out-dir", str(tmp_path)])
    check_results(tmp_path / "memory_scale_10m.json")
    assert not (tmp_path / "runs" / "3000").exists()  # the streamed memories are deleted at the end


def test_memory_build(tmp_path: Path) -> None:
    pytest.importorskip("ray")
    import memory_build

    report = memory_build.main(["--examples", "60", "--shards", "2", "--workers", "1",
                                "--work-dir", str(tmp_path / "w"), "--out-dir", str(tmp_path)])
    check_results(tmp_path / "memory_build.json")
    assert all(r["labels_equal"] and r["values_equal"] and r["records_equal"] for r in report["agreement"].values())


def test_ner(tmp_path: Path) -> None:
    import ner
    import torch

    before = torch.get_num_threads()  # the script sets the thread count (default 1) for the whole process
    args = ["--conll-fraction", "0.005", "--dev-limit", "20", "--test-limit", "20", "--weibo-epochs", "1",
            "--out-dir", str(tmp_path), "--runs-dir", str(tmp_path / "runs")]
    try:
        first = ner.main(args)
        runs = sorted((tmp_path / "runs").iterdir())
        again = ner.main(args)  # resumes: every run is read back, none is trained again
    finally:
        torch.set_num_threads(before)
    check_results(tmp_path / "ner.json")
    assert len(runs) == 3 and sorted((tmp_path / "runs").iterdir()) == runs
    assert again["rows"] == first["rows"]


def test_train_speed(tmp_path: Path) -> None:
    import train_speed

    train_speed.main(["--train-limit", "40", "--dev-limit", "20", "--seeds", "1", "--out-dir", str(tmp_path)])
    check_results(tmp_path / "train_speed.json")


def test_knn_speed(tmp_path: Path) -> None:
    import knn_speed

    report = knn_speed.main(["--skip", "ner", "--re-train-limit", "32", "--re-memory-size", "60000", "--re-eval-limit",
                             "40", "--repeats", "1", "--out-dir", str(tmp_path)])
    assert any("auto → hnsw" in r["method"] for r in report["rows"])  # 60k keys: above the flat limit
    check_results(tmp_path / "knn_speed.json")


def test_zeroshot(tmp_path: Path) -> None:
    import torch
    import zeroshot

    before = torch.get_num_threads()  # the script sets the thread count for the whole process
    args = ["--m", "5", "--splits", "ori", "--train-per-relation", "1", "--limit", "8", "--dev-per-relation", "3",
            "--test-per-relation", "2", "--speed-m", "5", "--speed-instances", "4", "--speed-sizes", "5", "20",
            "--repeats", "1", "--threads", "1", "--out-dir", str(tmp_path), "--runs-dir", str(tmp_path / "runs")]
    try:
        first = zeroshot.main(args)
        again = zeroshot.main(args)  # resumes: the split's run and the timings are read back, nothing is trained
    finally:
        torch.set_num_threads(before)
    report = check_results(tmp_path / "zeroshot.json")
    assert again["rows"] == first["rows"]
    run = report["per_split"][0]
    assert run["sizes"] == {"train": 8, "dev": 15, "test": 10}  # 5 unseen relations × 2, their support set apart
    f1 = {r["method"]: r["mean"] for r in report["rows"] if (r["setting"], r["metric"]) == ("m=5 unseen", "macro F1")}
    assert f1["EMMA fusion"] == pytest.approx(100 * run["k0"]["fused"]["macro_f1"])
    methods = {r["method"] for r in report["rows"]}
    assert {"off the shelf (untrained encoder, cosine)", "EMMA fusion, abstain off",
            "(c) cross-encoder over all 5 relations"} <= methods
    assert report["speed"]["sizes"] == [5, 20]


def test_pipeline_scierc(tmp_path: Path) -> None:
    import pipeline_scierc

    common = ["--limit", "60", "--epochs", "1", "--models-dir", str(tmp_path / "models")]
    pipeline_scierc.main(["train-ner", *common])
    pipeline_scierc.main(["train-re", *common])
    report = pipeline_scierc.main(["evaluate", *common, "--check", "5", "--speed-docs", "2", "--repeats", "1",
                                   "--out-dir", str(tmp_path)])
    assert report["pipeline_check"]["same_scores"]  # Pipeline.extract scores as the composed models do
    assert set(report["scores"]) == {"NER vanilla + RE vanilla", "NER vanilla + RE kNN", "NER kNN + RE vanilla",
                                     "NER kNN + RE kNN"}
    check_results(tmp_path / "pipeline_scierc.json")


def test_fewshot_kshot(tmp_path: Path) -> None:
    import fewshot_kshot

    from knnie import read_relation_types, read_relations

    fewshot_kshot.main(["prepare", "--out", str(tmp_path / "sets")])
    schema = read_relation_types(tmp_path / "sets" / "semeval_schema.json")
    assert len(schema) == 19 and {r.id for r in schema} >= {"Other", "Cause-Effect(e2,e1)"}
    assert len(read_relations(tmp_path / "sets" / "semeval_k8_s4.jsonl")) == 8 * 18  # train.txt has 18 labels
    fewshot_kshot.main(["run", "--plan", "semeval:8:1", "--epochs", "1", "--limit-test", "40", "--lrs", "1e-4",
                        "--out-dir", str(tmp_path), "--runs-dir", str(tmp_path / "runs")])
    report = check_results(tmp_path / "fewshot_kshot.json")
    official = {r["method"]: r["mean"] for r in report["rows"] if r["metric"].startswith("test official")}
    test = report["per_run"][0]["test"]
    assert official[fewshot_kshot.METHODS["vanilla"]] == pytest.approx(100 * test["vanilla"]["semeval_official_f1"])
    assert official[fewshot_kshot.METHODS["knn_re"]] == pytest.approx(100 * test["knn_re"]["semeval_official_f1"])
