"""Benchmark: new relations added to a trained model's memory without retraining (live memories).

On Wiki80, a seeded set of relations is held out of training. The RE model is trained on the
others, their training examples become its 'train' memory, and k, T, λ are tuned on the dev
examples of the seen relations. Then, for K = 5 / 10 / 20 examples per held-out relation (several
seeded draws from their training examples), `add_examples` puts them in the memory and the test
set is scored: micro-F1 on the held-out relations (0 before: the head cannot name them) and on the
seen ones (to show nothing broke), with `remove_examples` between draws. Methods:

* `head-blind` (knnie's interpolation): the head has no opinion on labels it never saw, so the
  memory's kNN mass on them goes through whole (`knnie.memory.knn.interpolate`);
* `plain`: p = λ·p_kNN + (1 − λ)·p_model, p_model = 0 on the new labels;
* `separate memory`: the examples in a memory of their own (`add_examples(memory="live")`, the
  default); untuned, it is searched together with the train memory (one kNN over both), so it
  should score as the first.

Run from the repository root, e.g.
    .venv/bin/python bench/live_memory.py
    .venv/bin/python bench/live_memory.py --train-per-relation 5 --epochs 1 --draws 1 --out-dir /tmp/b  # smoke
Writes bench/results/live_memory.json and .md; the trained model is kept under bench/.runs and reused.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import random
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common import RESULTS, RUNS, add_runs_arguments, cached, command, log, machine, row, write_results
from knn_re import DATASETS, load
from knnie import RelationExample, RelationExtractor, TrainConfig, train
from knnie.encoders import DEFAULT_ENCODER

SHOTS = (5, 10, 20)
NOTE = ("mean/std over seeds x draws (each seed: its own held-out relations and model). Held-out relations score 0 "
        "before: the head cannot name them. Tuned on seen-relation dev only, before any addition; "
        "every addition is removed again before the next, and the predictions are checked to be the original ones. "
        "The micro-F1 of the seen relations rises after an addition because test examples of the held-out "
        "relations stop being false positives of seen ones; their recall says whether an addition took "
        "examples of seen relations away from them.")
DATASET = "wiki80-10"  # CP's 10 % train (49 per relation, less those in dev/test), kNN-RE dev and test


def per_relation(examples: list[RelationExample], cap: int | None, seed: int) -> list[RelationExample]:
    """A seeded sample of at most `cap` examples of each relation (all of them without a cap), in input order."""
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, ex in enumerate(examples):
        by_label[ex.label].append(i)
    rng = random.Random(seed)
    keep = {i for label in sorted(by_label) for i in (rng.sample(by_label[label], min(cap, len(by_label[label])))
                                                      if cap else by_label[label])}
    return [ex for i, ex in enumerate(examples) if i in keep]


def split(sets: tuple[list[RelationExample], ...], seed: int, args) -> dict[str, Any]:
    """The held-out relations of `seed` and the train / dev / pool / test sets of its run."""
    train_set, dev_set, test_set = sets
    labels = sorted({ex.label for ex in train_set})
    held = sorted(random.Random(seed).sample(labels, args.held_out))
    seen = [r for r in labels if r not in held]
    return {"seed": seed, "held": held, "seen": seen,
            "train": per_relation([ex for ex in train_set if ex.label in seen], args.train_per_relation, seed),
            "pool": [ex for ex in train_set if ex.label in held],
            "dev": per_relation([ex for ex in dev_set if ex.label in seen], args.dev_per_relation, seed),
            "test": per_relation(test_set, args.test_per_relation, seed)}


def train_key(args, data: dict[str, Any]) -> dict[str, Any]:
    return {"bench": "live_memory", "dataset": DATASET, "held": data["held"], "epochs": args.epochs, "lr": args.lr,
            "seed": data["seed"], "encoder": args.encoder, "sizes": [len(data["train"]), len(data["dev"])]}


def trained_model(args, data: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """The model trained on the seen relations (trained once, kept under the runs directory)."""
    key = train_key(args, data)
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    model_dir = (args.runs_dir or RUNS) / "live_memory-models" / digest

    def fit() -> dict[str, Any]:
        extractor = RelationExtractor.new(data["seen"], args.encoder)
        start = time.perf_counter()
        history = train(extractor, data["train"], data["dev"], TrainConfig(epochs=args.epochs, lr=args.lr,
                                                                           seed=data["seed"]))
        seconds = round(time.perf_counter() - start, 1)
        extractor.save_pretrained(model_dir, overwrite=True)
        log(f"trained on {len(data['train'])} examples in {seconds}s")
        return {"history": history, "train_seconds": seconds}

    result = cached(args.runs_dir, key, fit)
    if not (model_dir / "knnie_config.json").is_file():  # read back from a runs directory without the model
        result = fit()
    return model_dir, result


def micro_f1(gold: np.ndarray, pred: np.ndarray, relations: set[str]) -> float:
    """Micro-F1 over the examples and predictions of `relations` only (100 = all right)."""
    inside_gold, inside_pred = np.isin(gold, list(relations)), np.isin(pred, list(relations))
    tp = float(((gold == pred) & inside_gold).sum())
    return 200 * tp / (inside_gold.sum() + inside_pred.sum()) if tp else 0.0


def evaluate(args, data: dict[str, Any], model_dir: Path) -> dict[str, Any]:
    """Train memory, tuning on seen dev, then every K and draw: add, score the test set, remove."""
    model = RelationExtractor.from_pretrained(model_dir, memories=False, device="cpu")
    model.attach_memory("train", model.build_memory(data["train"], source="train"))
    tuned = model.tune(data["dev"])
    log(f"seed {data['seed']}: tuned {tuned['memories']['train']['params']} (dev F1 "
        f"{100 * tuned['memories']['train']['dev_f1']:.2f}, vanilla {100 * tuned['vanilla_f1']:.2f})")
    vectors, p_model = model.encode(data["test"])
    gold = np.array([ex.label for ex in data["test"]])
    groups = {"held-out": set(data["held"]), "seen": set(data["seen"]), "all": set(data["held"] + data["seen"])}

    def scores(p: np.ndarray) -> dict[str, float]:
        pred = np.array(model.label_space, dtype=object)[p.argmax(-1)]
        seen = np.isin(gold, data["seen"])
        return {**{group: micro_f1(gold, pred, relations) for group, relations in groups.items()},
                "seen recall": 100 * float((pred[seen] == gold[seen]).mean())}

    p = model.distributions(p_model, model.search(vectors))
    out: dict[str, Any] = {"seed": data["seed"], "held": data["held"], "tuned": tuned,
                           "before": {"vanilla": scores(p["vanilla"]), "knn_re": scores(p["knn_re"])}, "added": []}
    pool: dict[str, list[RelationExample]] = defaultdict(list)
    for ex in data["pool"]:
        pool[ex.label].append(ex)
    for k in args.shots:
        for draw in range(args.draws):
            rng = random.Random(f"{data['seed']}-{k}-{draw}")
            added = [ex for r in data["held"] for ex in rng.sample(pool[r], k)]
            run: dict[str, Any] = {"k": k, "draw": draw}
            for method, memory in (("head-blind", "train"), ("separate memory", "live")):
                start = time.perf_counter()
                model.add_examples(added, memory=memory, source="added")
                run["add_seconds"] = time.perf_counter() - start
                searches = model.search(vectors)
                run[method] = scores(model.final(model.distributions(p_model, searches)))
                if memory == "train":  # the plain formula on the same search, for comparison
                    run["plain"] = scores(model._memory_distribution("train", model.params("train"), p_model,
                                                                     searches["train"], head_blind=False))
                model.remove_examples("added")
            out["added"].append(run)
            log(f"  K={k} draw {draw}: " + "; ".join(f"{m} held-out {run[m]['held-out']:.1f} seen "
                                                      f"{run[m]['seen']:.1f}" for m in METHODS))
    restored = scores(model.final(model.distributions(p_model, model.search(vectors))))
    assert restored == out["before"]["knn_re"], "removing the additions did not restore the predictions"
    return out


METHODS = ("head-blind", "plain", "separate memory")
NAMES = {"head-blind": "kNN-RE, head blind to new labels (knnie)", "plain": "kNN-RE, plain λ-interpolation",
         "separate memory": "kNN-RE, examples in their own memory 'live'"}
METRICS = {"held-out": "test micro-F1, held-out relations", "seen": "test micro-F1, seen relations",
           "all": "test micro-F1, all 80 relations",
           "seen recall": "test recall of the seen relations' examples (what an addition can break)"}


def summarise(runs: list[dict[str, Any]], args) -> list[dict[str, Any]]:
    rows = []
    for group, metric in METRICS.items():
        for method, name in (("vanilla", "vanilla (head only)"), ("knn_re", "kNN-RE (train memory)")):
            rows.append(row("Wiki80", "before adding (K=0)", name, metric, [r["before"][method][group] for r in runs]))
        for k in args.shots:
            for method in METHODS:
                rows.append(row("Wiki80", f"K={k} added per held-out relation", NAMES[method], metric,
                                [a[method][group] for r in runs for a in r["added"] if a["k"] == k]))
    rows.append(row("Wiki80", f"{args.held_out} x K examples, K in {args.shots}", "add_examples (encode + add)",
                    "seconds", [a["add_seconds"] for r in runs for a in r["added"]]))
    return rows


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--held-out", type=int, default=10, help="relations held out of training (of 80)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="one run each: picks the held-out relations, the subsets, training and the draws")
    p.add_argument("--draws", type=int, default=5, help="seeded draws of the K added examples per K")
    p.add_argument("--shots", type=int, nargs="+", default=list(SHOTS))
    p.add_argument("--train-per-relation", type=int, default=30)
    p.add_argument("--dev-per-relation", type=int, default=20)
    p.add_argument("--test-per-relation", type=int, default=None, help="default: the whole test set (70 each)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--encoder", default=DEFAULT_ENCODER, help="encoder name or local model directory")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    add_runs_arguments(p)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = arguments(argv)
    torch.set_num_threads(args.threads)
    sets = load(DATASETS[DATASET], None)
    runs = []
    for seed in args.seeds:
        data = split(sets, seed, args)
        log(f"seed {seed}: held out {', '.join(data['held'])}; " + ", ".join(f"{k} {len(data[k])}"
                                                                           for k in ("train", "pool", "dev", "test")))
        model_dir, training = trained_model(args, data)
        key = train_key(args, data) | {"part": "added", "metrics": 2, "shots": args.shots, "draws": args.draws,
                                       "test": len(data["test"])}
        runs.append(cached(args.runs_dir, key, functools.partial(evaluate, args, data, model_dir))
                    | {"training": training})
    reduced = (f"training: a seeded {args.train_per_relation} per seen relation ({len(data['train'])} examples), "
               f"{args.epochs} epoch(s), lr {args.lr}; dev: a seeded {args.dev_per_relation} per seen relation; "
               f"test: {'all' if args.test_per_relation is None else args.test_per_relation} per relation; "
               f"torch {torch.__version__} with {args.threads} thread(s) on a shared machine")
    report = {
        "name": "live_memory", "command": command(),
        "data": {"train": DATASETS[DATASET].train, "dev": DATASETS[DATASET].dev, "test": DATASETS[DATASET].test,
                 "held_out": f"{args.held_out} of 80 relations per seed (seeded); the added examples are drawn from "
                             "their training examples, never from dev or test",
                 "sizes": {k: len(data[k]) for k in ("train", "pool", "dev", "test")}},
        "encoder": args.encoder, "seeds": args.seeds, "draws": args.draws, "shots": args.shots, "machine": machine(),
        "reduced": reduced, "rows": summarise(runs, args), "runs": runs,
    }
    write_results("live_memory", report, args.out_dir, [NOTE])
    return report


if __name__ == "__main__":
    main()
