"""Benchmark: the kNN-RE paper's main table (Table 2), long tail (Table 5) and case study
(Table 4) on one dataset.

Rows vanilla (the classifier alone), kNN-only (λ = 1) and kNN-RE (train memory), test
scores with (k, T, λ, kernel) chosen on dev, mean ± std over seeds. Vanilla and the kNN rows
use the same trained model in each seed. Long tail: per-relation F1 of the 10 rarest
training relations. Case study: test examples the memory corrects, with their neighbours.

Run from the repository root, e.g.
    .venv/bin/python bench/knn_re.py --dataset semeval --seeds 0 1 2 --epochs 3
    .venv/bin/python bench/knn_re.py --dataset wiki80-1 --limit 40 --out-dir /tmp/b   # smoke
Writes bench/results/knn_re_<dataset>.json and .md. Each finished seed is kept in bench/.runs
and reused by a rerun with the same configuration (resume; seeds can run in parallel processes).
"""

from __future__ import annotations

import argparse
import functools
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from common import RESULTS, add_runs_arguments, cached, command, log, machine, row, write_results
from knnie import RelationExample, RelationExtractor, TrainConfig, read_relations, train
from knnie.encoders import DEFAULT_ENCODER
from knnie.evaluation.relations import relation_report

DATA = Path("../shared/data")
METHODS = {"vanilla": "vanilla (PURE-style classifier)", "knn": "kNN-only (λ=1)", "knn_re": "kNN-RE (train memory)"}


@dataclass
class Dataset:
    name: str
    train: str
    dev: str
    test: str
    strip_types: bool = False  # Wiki80: CP's NER types in train, "sub"/"obj" in the kNN-RE files
    filter_overlap: bool = False  # drop training sentences that occur in dev or test
    published: dict[str, str] = field(default_factory=dict)  # method -> figure with citation
    note: str = ""


WAN = "Wan et al. 2022 (kNN-RE)"
DATASETS = {
    "semeval": Dataset("SemEval-2010", "semeval2010/opennre/train.txt", "semeval2010/opennre/dev.txt",
                       "semeval2010/opennre/test.txt"),
    "scierc": Dataset("SciERC", "scierc/train.json", "scierc/dev.json", "scierc/test.json",
                      published={"vanilla": f"PURE 68.45 ({WAN})", "knn_re": f"kNN-RE 69.47 ({WAN})"}),
    "wiki80-10": Dataset("Wiki80 10%", "wiki80/opennre/cp_train_0.1.txt", "wiki80/knnre_pure/dev.json",
                         "wiki80/knnre_pure/test.json", strip_types=True, filter_overlap=True,
                         note="Full Wiki80 train is not available here; the paper's full-data figures are "
                              f"PURE 86.70 → kNN-RE 87.54 ({WAN})."),
    "wiki80-1": Dataset("Wiki80 1%", "wiki80/opennre/cp_train_0.01.txt", "wiki80/knnre_pure/dev.json",
                        "wiki80/knnre_pure/test.json", strip_types=True, filter_overlap=True,
                        published={"vanilla": f"PURE 31.96 ({WAN}, 1 %)"}),
}


def load(ds: Dataset, limit: int | None) -> tuple[list[RelationExample], ...]:
    """Train, dev, test; the kNN-RE Wiki80 files hold one labelled pair per sentence (no negatives)."""
    sets = [read_relations(DATA / p, negatives=not ds.filter_overlap) for p in (ds.train, ds.dev, ds.test)]
    if ds.filter_overlap:
        held_out = {tuple(t.lower() for t in ex.tokens) for ex in sets[1] + sets[2]}
        before = len(sets[0])
        sets[0] = [ex for ex in sets[0] if tuple(t.lower() for t in ex.tokens) not in held_out]
        log(f"dropped {before - len(sets[0])} training sentences that occur in dev or test")
    if ds.strip_types:
        for ex in (e for s in sets for e in s):
            ex.head, ex.tail = type(ex.head)(ex.head.start, ex.head.end), type(ex.tail)(ex.tail.start, ex.tail.end)
    if limit:
        sets = [random.Random(0).sample(s, min(limit, len(s))) for s in sets]
    return tuple(sets)


def run_seed(seed: int, train_set, dev_set, test_set, args) -> dict[str, Any]:
    labels = sorted({ex.label for ex in train_set + dev_set})
    types = sorted({s.type for ex in train_set for s in (ex.head, ex.tail) if s.type})
    extractor = RelationExtractor.new(labels, args.encoder, entity_types=types)
    start = time.perf_counter()
    history = train(extractor, train_set, dev_set, TrainConfig(epochs=args.epochs, lr=args.lr, seed=seed,
                                                                    length_buckets=not args.random_batches))
    train_seconds = time.perf_counter() - start
    extractor.attach_memory("train", extractor.build_memory(train_set))
    tuned = extractor.tune(dev_set)
    p, searches = extractor.method_distributions(test_set)
    gold = [ex.label for ex in test_set]
    preds = {m: [labels[i] for i in probs.argmax(-1)] for m, probs in p.items()}
    reports = {m: relation_report(gold, preds[m], extractor.config.negative_label) for m in preds}
    log(f"seed {seed}: " + ", ".join(f"{m} {100 * r['micro_f1']:.2f}" for m, r in reports.items()))
    return {"seed": seed, "history": history, "train_seconds": round(train_seconds, 1), "tuned": tuned,
            "reports": reports, "cases": cases(test_set, preds, searches["train"], extractor, 5)}


def cases(test_set, preds, search, extractor, n: int) -> list[dict[str, Any]]:
    """The first n test examples that vanilla gets wrong and kNN-RE right, with 3 neighbours."""
    dist, ids = search
    memory = extractor.memories["train"]
    out = []
    for i, ex in enumerate(test_set):
        if preds["vanilla"][i] != ex.label and preds["knn_re"][i] == ex.label:
            out.append({"sentence": ex.sentence, "head": ex.mention(ex.head), "tail": ex.mention(ex.tail),
                        "gold": ex.label, "vanilla": preds["vanilla"][i], "knn_re": preds["knn_re"][i],
                        "neighbours": [{"text": " ".join(memory.records[j]["tokens"]), "distance": float(d),
                                        "label": extractor.config.labels[memory.values[j]]}
                                       for d, j in zip(dist[i, :3], ids[i, :3])]})
        if len(out) == n:
            break
    return out


def summarise(ds: Dataset, runs: list[dict], train_set, args) -> tuple[list[dict], dict[str, Any], list[str]]:
    setting = f"train {len(train_set)}, {args.epochs} epoch(s), lr {args.lr}"
    metrics = [("micro_f1", "test micro-F1 (no-relation excluded)"), ("macro_f1", "test macro-F1")]
    if "semeval_official_f1" in runs[0]["reports"]["vanilla"]:
        metrics.append(("semeval_official_f1", "test official SemEval macro-F1"))
    rows = [row(ds.name, setting, METHODS[m], name, [100 * r["reports"][m][key] for r in runs],
                published=ds.published.get(m, "") if key == "micro_f1" else "")
            for key, name in metrics for m in METHODS]
    negative = {"no_relation", "Other"}
    counts = Counter(ex.label for ex in train_set if ex.label not in negative)
    rare = sorted(counts, key=lambda r: (counts[r], r))[:10]
    tail = {r: {"train_count": counts[r], **{m: float(np.mean([100 * x["reports"][m]["per_relation"].get(r, {}).get(
        "f1", 0.0) for x in runs])) for m in ("vanilla", "knn_re")}} for r in rare}
    md = ["## Long tail: the 10 rarest training relations (test F1, mean over seeds)", "",
          "| relation | train count | vanilla | kNN-RE |", "|---|---|---|---|"]
    md += [f"| {r} | {v['train_count']} | {v['vanilla']:.2f} | {v['knn_re']:.2f} |" for r, v in tail.items()]
    md += ["", f"## Case study: test examples kNN-RE corrects (seed {runs[0]['seed']})", ""]
    for c in runs[0]["cases"]:
        md.append(f"- **{c['sentence']}** — head *{c['head']}*, tail *{c['tail']}*: gold `{c['gold']}`, "
                  f"vanilla `{c['vanilla']}`, kNN-RE `{c['knn_re']}`")
        md += [f"  - d = {nb['distance']:.1f} `{nb['label']}`: {nb['text']}" for nb in c["neighbours"]]
    if ds.note:
        md += ["", ds.note]
    return rows, tail, md


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=sorted(DATASETS), required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--limit", type=int, default=None, help="seeded sample of N per split (smoke tests)")
    p.add_argument("--random-batches", action="store_true",
                   help="random training batches as before length bucketing (to reproduce earlier figures)")
    p.add_argument("--encoder", default=DEFAULT_ENCODER, help="encoder name or local model directory")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    add_runs_arguments(p)
    args = p.parse_args(argv)
    ds = DATASETS[args.dataset]
    train_set, dev_set, test_set = load(ds, args.limit)
    key = {"bench": "knn_re", "dataset": args.dataset, "epochs": args.epochs, "lr": args.lr, "limit": args.limit,
           "sizes": [len(train_set), len(dev_set), len(test_set)]}
    if not args.random_batches:  # length-bucketed batches train differently from the runs cached before them
        key["batches"] = "length-bucketed"
    if args.encoder != DEFAULT_ENCODER:  # runs of the default encoder keep their earlier keys
        key["encoder"] = args.encoder
    runs = [cached(args.runs_dir, key | {"seed": seed},
                   functools.partial(run_seed, seed, train_set, dev_set, test_set, args)) for seed in args.seeds]
    rows, tail, md = summarise(ds, runs, train_set, args)
    reduced = [f"{args.epochs} epoch(s)"] + ([f"seeded sample of {args.limit} per split"] if args.limit else [])
    reduced += ["random batches (as before length bucketing)"] if args.random_batches else []
    report = {
        "name": f"knn_re_{args.dataset}" + ("" if args.encoder == DEFAULT_ENCODER else f"_{Path(args.encoder).name}"),
        "command": command(),
        "data": {"train": ds.train, "dev": ds.dev, "test": ds.test, "sizes": [len(train_set), len(dev_set),
                                                                              len(test_set)]},
        "encoder": args.encoder, "seeds": args.seeds, "machine": machine(), "reduced": "; ".join(reduced),
        "rows": rows, "long_tail": tail,
        "per_seed": [{k: v for k, v in r.items() if k != "reports"} | {"test": {
            m: {key: rep[key] for key in ("micro_f1", "macro_f1", "semeval_official_f1") if key in rep}
            for m, rep in r["reports"].items()}} for r in runs],
    }
    write_results(report["name"], report, args.out_dir, md)
    return report


if __name__ == "__main__":
    main()
