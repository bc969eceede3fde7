"""Benchmark: zero-shot relation extraction on FewRel (the ZS-BERT / RE-Matching / EMMA protocol).

Train on the seen relations of a RE-Matching class split, test on the sentences of its m unseen
relations only; macro P/R/F1 over the unseen relations (`macro_prf`, as ZS-BERT and RE-Matching
compute it); mean ± std over the split files (40, 41, 42, 43, ori); m = 5, 10, 15. Rows:

* off the shelf: the bundled encoder untrained, cosine of the marked sentence ([head marker ; tail
  marker] states) with the description (mean pooled): what training adds;
* the recall stage alone (dual tower), and the full EMMA fusion (recall top-k + cross-encoder),
  with recall@k of the first stage;
* the same with K = 1 and K = 5 labelled examples of each unseen relation in the relation index.
  The 5 examples are drawn (seeded) from each unseen relation's sentences and removed from that
  split's test set for every row, so all rows of a split are measured on the same sentences.

Abstain: per split, the candidate list is the first ceil(m/2) unseen relations; the test mixes their
sentences with those of the other unseen relations (unseen in training and not in the list: the right
answer is "none of these"). The threshold is the one `train_zeroshot` calibrated on the split's 5 eval
relations (held out of training, never the test's). Rows: P/R/F1 of none, and the micro-F1 of the
decisions (none excluded) with abstain auto and off.

Speed: one trained model (--speed-m, --speed-split), a fixed seeded set of --speed-instances test
sentences of its first 5 unseen relations, instances/second (median of --repeats timed repeats, the
description cache warm: every candidate set is scored once, untimed, before) of (a) recall only,
(b) recall + cross-encoder over the top k, (c) the cross-encoder over all m relations, and how (a)
and (b) grow with the candidate relations (--speed-sizes: the 5, then the split's 15 test + 5 eval,
then all 80 FewRel relations, then the 113 Wiki-ZSL descriptions as distractors).

Data: `fewrel_zs.fewrel_pool` (22,580 distinct examples of the 80 FewRel relations; RE-Matching's own
fewrel_dataset.json, 700 per relation, is not available) and RE-Matching's split files. Descriptions:
FewRel's pid2name.json, "name: description" (--descriptions rematching: RE-Matching's
fewrel_relation_description.json instead). Dev per split: the 5 eval relations' sentences (a seeded
--dev-per-relation each), for the best epoch and the abstain calibration only.

Run (from the repository root)
    .venv/bin/python bench/zeroshot.py --dry-run                        # the plan and its expected time
    .venv/bin/python bench/zeroshot.py                                  # the reduced default (hours)
    .venv/bin/python bench/zeroshot.py --m 5 --splits ori --train-per-relation 1 --limit 8 --dev-per-relation 3 \\
        --test-per-relation 2 --speed-m 5 --speed-instances 4 --speed-sizes 5 20 --repeats 1 --threads 1 \\
        --out-dir /tmp/zs --runs-dir /tmp/zs/runs                       # smoke (about a minute)
Writes zeroshot.json and zeroshot.md to --out-dir (bench/results). Each finished (m, split) run is kept
in --runs-dir (bench/.runs) and reused by a rerun with the same configuration (resume); the model of the
speed split is saved there too (runs-dir/zeroshot-models/), so the speed part does not train it again.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import math
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common import RESULTS, add_runs_arguments, cached, command, log, machine, row, write_results
from fewrel_zs import DATA, SPLITS, fewrel_pool, rematching_split
from knnie import RelationExample
from knnie.data import read_relation_types
from knnie.data.descriptions import RelationType
from knnie.encoders.loading import DEFAULT_ENCODER
from knnie.evaluation.relations import macro_prf
from knnie.tasks.training import seed_everything
from knnie.tasks.zeroshot import ZeroShotRelationExtractor, ZeroShotTrainConfig, train_zeroshot

DESCRIPTIONS = {"pid2name": "fewrel/pid2name.json",
                "rematching": "zeroshot/fewrel/relation_description/fewrel_relation_description.json"}
WIKIZSL = "zeroshot/wikizsl/relation_description/wikizsl_relation_description.json"
SHOTS = (1, 5)
# Rough rates on 2 CPU cores (MiniLM-L6, 2 torch threads), for the time estimate printed at the start:
# measured at 1 thread on the 2 cores shared with another benchmark: 1.9 and 10; about twice that is expected.
TRAIN_RATE = 4.0  # training examples per second
SCORE_RATE = 20.0  # instances per second of `scores` with the cross-encoder over the top 3
# Published FewRel figures (m -> method key -> "figure (citation)"). The EMMA paper's table (arXiv 2406.11429)
# could not be read where this script was written; its m = 5 F1 is the one the zero-shot issue quotes from it.
# RE-Matching's and ZS-BERT's, and EMMA's m = 10 and 15, are left empty rather than quoted from memory.
PUBLISHED: dict[int, dict[str, str]] = {5: {"fused0": "94.67 (EMMA, Li et al. 2024, as quoted in issue 13)"}}
NOTE = ("Published figures (EMMA, Li et al. 2024, arXiv 2406.11429; RE-Matching, Zhao et al. 2023; ZS-BERT, "
        "Chen & Li 2021) use BERT-base (110M parameters) trained on RE-Matching's fewrel_dataset.json, 700 "
        "sentences per relation, several epochs; ours: the bundled encoder, the FewRel pool gathered here "
        "(see data), a seeded cap of training sentences per seen relation and the epochs under 'reduced'. "
        "The published column is empty where the paper's table could not be read here.")


def cap(examples: list[RelationExample], n: int | None, seed: str) -> list[RelationExample]:
    """A seeded sample of at most n (all if n is None), kept in order."""
    if n is None or len(examples) <= n:
        return list(examples)
    keep = sorted(random.Random(seed).sample(range(len(examples)), n))
    return [examples[i] for i in keep]


def split_data(pool: dict[str, list[RelationExample]], m: int, split: str, args) -> dict[str, Any]:
    """Train / dev / support / test examples and the relation ids of one split (all seeded)."""
    seen, held, unseen = rematching_split(DATA, m, split)
    if args.limit:
        seen = sorted(random.Random(f"relations-{args.seed}-{m}-{split}").sample(seen, min(args.limit, len(seen))),
                      key=seen.index)
    train = [ex for r in seen for ex in cap(pool[r], args.train_per_relation, f"train-{args.seed}-{split}-{r}")]
    dev = [ex for r in held for ex in cap(pool[r], args.dev_per_relation, f"dev-{args.seed}-{split}-{r}")]
    support, test = [], []
    for r in unseen:
        order = random.Random(f"support-{args.seed}-{m}-{split}-{r}").sample(range(len(pool[r])), len(pool[r]))
        drawn = set(order[: max(SHOTS)])
        support.append([pool[r][i] for i in order[: max(SHOTS)]])
        rest = [ex for i, ex in enumerate(pool[r]) if i not in drawn]
        test += cap(rest, args.test_per_relation, f"test-{args.seed}-{m}-{split}-{r}")
    return {"seen": seen, "held": held, "unseen": unseen, "train": train, "dev": dev, "support": support,
            "test": test}


def scored(model: ZeroShotRelationExtractor, test: list[RelationExample], relations: list[RelationType],
           support: list[RelationExample] = (), rerank: bool = True) -> dict[str, Any]:
    """Macro P/R/F1 of the recall stage and (with `rerank`) of the fusion, and recall@k."""
    start = time.perf_counter()
    if rerank:
        out = model.evaluate(test, relations, support)
    else:
        gold = model.gold_ids(test, relations)
        s = model.scores(test, relations, support, rerank=False)
        out = {"recall": macro_prf(gold, s.p_all.argmax(1), [r.id for r in relations]),
               f"recall@{s.top.shape[1]}": s.recall_at(gold)}
    for stage in ("recall", "fused"):
        if stage in out:
            out[stage] = {k: v for k, v in out[stage].items() if k != "per_relation"}
    out["seconds"] = round(time.perf_counter() - start, 1)
    return out


def abstain_test(model: ZeroShotRelationExtractor, test: list[RelationExample], unseen: list[RelationType]
                 ) -> dict[str, Any]:
    """None-of-these on the first ceil(m/2) unseen relations' sentences mixed with the others'."""
    listed = unseen[: math.ceil(len(unseen) / 2)]
    ids = {r.id for r in listed}
    inside = [ex for ex in test if ex.label in ids]
    outside = [ex for ex in test if ex.label not in ids]
    s = model.scores(inside + outside, listed)
    gold = np.concatenate([model.gold_ids(inside, listed), np.full(len(outside), -1)])
    best = s.fused.max(1)
    right = s.top[np.arange(len(gold)), s.fused.argmax(1)] == gold
    outsider = gold < 0
    threshold = model.threshold("auto")
    out = {"candidates": len(listed), "inside": len(inside), "outside": len(outside), "threshold": threshold,
           "calibration": model.config.calibration}
    for name, t in (("auto", threshold), ("off", None)):
        answered = best >= t if t is not None else np.ones(len(gold), bool)
        tp = float((answered & right).sum())
        p, r = tp / max(1, answered.sum()), tp / max(1, len(inside))
        none_tp = float((~answered & outsider).sum())
        np_, nr = none_tp / max(1, (~answered).sum()), none_tp / max(1, outsider.sum())
        out[name] = {"micro_f1": f1(p, r), "micro_precision": p, "micro_recall": r, "none_precision": np_,
                     "none_recall": nr, "none_f1": f1(np_, nr), "abstained": int((~answered).sum())}
    return out


def f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def train_model(data: dict[str, Any], types: dict[str, RelationType], args, model_dir: Path | None
                ) -> tuple[ZeroShotRelationExtractor, list[dict], float]:
    """The extractor trained on the split's seen relations (abstain calibrated on its eval relations),
    saved to `model_dir` if given; with its history and training seconds."""
    seed_everything(args.seed)  # the new marker embeddings are random
    model = ZeroShotRelationExtractor.new(args.encoder, top_k=args.top_k)
    config = ZeroShotTrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed)
    start = time.perf_counter()
    history = train_zeroshot(model, data["train"], [types[r] for r in data["seen"]], data["dev"],
                             [types[r] for r in data["held"]], config)
    seconds = round(time.perf_counter() - start, 1)
    log(f"  trained on {len(data['train'])} examples in {seconds}s "
        f"({len(data['train']) * args.epochs / seconds:.2f} examples/s, dev scoring and calibration included)")
    if model_dir is not None:
        model.save_pretrained(model_dir, overwrite=True)
    return model, history, seconds


def run_split(m: int, split: str, data: dict[str, Any], types: dict[str, RelationType], args,
              model_dir: Path | None) -> dict[str, Any]:
    """Train on the seen relations, then every row of one split; the model is saved to `model_dir`."""
    unseen = [types[r] for r in data["unseen"]]
    seed_everything(args.seed)
    shelf = ZeroShotRelationExtractor.new(args.encoder, top_k=args.top_k)
    out = {"m": m, "split": split, "sizes": {k: len(data[k]) for k in ("train", "dev", "test")},
           "shelf": scored(shelf, data["test"], unseen, rerank=False)}
    log(f"  off the shelf: macro-F1 {100 * out['shelf']['recall']['macro_f1']:.2f} ({out['shelf']['seconds']}s)")
    del shelf
    model, out["history"], out["train_seconds"] = train_model(data, types, args, model_dir)
    out["calibration"] = model.config.calibration
    for k in (0, *SHOTS):
        shots = [ex for per in data["support"] for ex in per[:k]]
        out[f"k{k}"] = scored(model, data["test"], unseen, shots)
        log(f"  K={k}: recall {100 * out[f'k{k}']['recall']['macro_f1']:.2f}, fused "
            f"{100 * out[f'k{k}']['fused']['macro_f1']:.2f} macro-F1 ({out[f'k{k}']['seconds']}s)")
    if "abstain" not in args.skip:
        start = time.perf_counter()
        out["abstain"] = abstain_test(model, data["test"], unseen)
        log(f"  abstain: none-F1 {100 * out['abstain']['auto']['none_f1']:.2f}, micro-F1 auto "
            f"{100 * out['abstain']['auto']['micro_f1']:.2f} / off {100 * out['abstain']['off']['micro_f1']:.2f} "
            f"({time.perf_counter() - start:.1f}s)")
    return out


def speed(model: ZeroShotRelationExtractor, data: dict[str, Any], types: dict[str, RelationType],
          wikizsl: list[RelationType], args) -> dict[str, Any]:
    """Instances/second of recall only, recall + cross over the top k, cross over all m; and growth."""
    first = set(data["unseen"][:5])
    pool = [ex for ex in data["test"] if ex.label in first]
    instances = cap(pool, args.speed_instances, f"speed-{args.seed}")
    order = [types[r] for r in data["unseen"] + data["held"] + data["seen"]]
    order += [t for t in types.values() if t not in order]  # with --limit, the seen relations left out
    order += [RelationType(f"wikizsl:{r.id}", r.name, r.description) for r in wikizsl]
    m = len(data["unseen"])
    configs = {"a": (order[:m], {"rerank": False}), "b": (order[:m], {}), "c": (order[:m], {"top_k": m})}
    for size in args.speed_sizes:
        configs[f"a{size}"] = (order[:size], {"rerank": False})
        configs[f"b{size}"] = (order[:size], {})
    for relations, kw in configs.values():  # untimed: every description encoded and cached ("cache warm")
        model.scores(instances[:2], relations, **kw)
    seconds: dict[str, list[float]] = {name: [] for name in configs}
    accuracy, loads = {}, []
    for r in range(args.repeats):
        loads.append(os.getloadavg()[0])
        for name, (relations, kw) in configs.items():
            start = time.perf_counter()
            s = model.scores(instances, relations, **kw)
            seconds[name].append(time.perf_counter() - start)
            choice = s.top[np.arange(len(instances)), s.fused.argmax(1)]
            accuracy[name] = float(np.mean([relations[j].id.removeprefix("wikizsl:") == ex.label
                                            for j, ex in zip(choice, instances)]))
        log(f"  repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.1f}s" for k, v in seconds.items()))
    return {"instances": len(instances), "m": m, "asked": args.speed_sizes,
            "sizes": [len(configs[f"a{s}"][0]) for s in args.speed_sizes],
            "timings": seconds, "accuracy": accuracy, "loads": loads, "threads": torch.get_num_threads(),
            "top_k": model.config.top_k}


def speed_rows(sp: dict[str, Any], setting: str) -> list[dict[str, Any]]:
    n, m, k = sp["instances"], sp["m"], sp["top_k"]
    ips = {name: [n / t for t in ts] for name, ts in sp["timings"].items()}
    med = {name: n / statistics.median(ts) for name, ts in sp["timings"].items()}
    names = {"a": "(a) recall only", "b": f"(b) recall + cross-encoder over the top {k}",
             "c": f"(c) cross-encoder over all {m} relations"}
    rows = [row("FewRel", f"{setting}, {m} candidate relations", names[x], "instances/second", ips[x],
                median=med[x]) for x in "abc"]
    for x, y in (("b", "a"), ("c", "b")):
        rows.append(row("FewRel", f"{setting}, {m} candidate relations", f"{names[x]} / {names[y]}",
                        "time ratio (median)", [med[y] / med[x]]))
    for size, real in zip(sp["asked"], sp["sizes"]):
        where = f"{setting}, growth: {real} candidate relations"
        for x in "ab":
            rows.append(row("FewRel", where, names[x], "instances/second", ips[f"{x}{size}"], median=med[f"{x}{size}"]))
        rows.append(row("FewRel", where, names["b"], "accuracy (a Wiki-ZSL entry of the gold P-id counts as right)",
                        [100 * sp["accuracy"][f"b{size}"]]))
    return rows


def split_rows(runs: dict[int, list[dict]]) -> list[dict[str, Any]]:
    rows = []
    for m, rs in runs.items():
        setting = f"m={m} unseen"
        k = rs[0]["k0"]
        at = next(key for key in k if key.startswith("recall@"))
        methods = [("shelf", "off the shelf (untrained encoder, cosine)", lambda r: r["shelf"]["recall"])]
        for shots in (0, *SHOTS):
            extra = f", + K={shots} example(s) per unseen relation" if shots else ""
            methods += [(f"recall{shots}", f"recall stage alone{extra}",
                         functools.partial(lambda s, r: r[f"k{s}"]["recall"], shots)),
                        (f"fused{shots}", f"EMMA fusion{extra}", functools.partial(lambda s, r: r[f"k{s}"]["fused"],
                                                                                   shots))]
        for key, name, get in methods:
            published = PUBLISHED.get(m, {}).get(key, "")
            for metric, field in (("macro P", "macro_precision"), ("macro R", "macro_recall"),
                                  ("macro F1", "macro_f1")):
                rows.append(row("FewRel", setting, name, metric, [100 * get(r)[field] for r in rs],
                                published=published if field == "macro_f1" else ""))
            if key.startswith("recall") or key == "shelf":
                shots = "shelf" if key == "shelf" else f"k{key[6:]}"
                rows.append(row("FewRel", setting, name, at, [100 * r[shots][at] for r in rs]))
        if "abstain" in rs[0]:
            a = rs[0]["abstain"]
            where = (f"m={m}: {a['candidates']} listed unseen relations + sentences of the other "
                     f"{m - a['candidates']} (answer: none)")
            auto = "EMMA fusion, abstain auto (threshold calibrated on the 5 eval relations)"
            for metric, field in (("none P", "none_precision"), ("none R", "none_recall"), ("none F1", "none_f1"),
                                  ("micro-F1 of the decisions (none excluded)", "micro_f1")):
                rows.append(row("FewRel", where, auto, metric, [100 * r["abstain"]["auto"][field] for r in rs]))
            rows.append(row("FewRel", where, "EMMA fusion, abstain off", "micro-F1 of the decisions (none excluded)",
                            [100 * r["abstain"]["off"]["micro_f1"] for r in rs]))
            rows.append(row("FewRel", where, auto, "threshold (fused score)",
                            [r["abstain"]["threshold"] or 0.0 for r in rs]))
    return rows


def estimate(plan: list[dict[str, Any]], args) -> float:
    """Seconds the plan should take: training, the scoring passes (the untrained recall-only pass counts
    1/4; dev: once an epoch, twice to calibrate) and the timed speed repeats."""
    train = sum(len(d["train"]) for d in plan) * args.epochs / TRAIN_RATE
    passes = 1 + len(SHOTS) + ("abstain" not in args.skip) + 0.25
    score = sum(len(d["test"]) * passes + len(d["dev"]) * (args.epochs + 2) for d in plan) / SCORE_RATE
    passes = 1 + args.speed_m / args.top_k + len(args.speed_sizes)  # (b), (c), (b) at each size; (a) is cheap
    timed = 0 if "speed" in args.skip else args.speed_instances * (args.repeats + 0.1) * passes / SCORE_RATE
    return train + score + timed


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--m", type=int, nargs="+", default=[5, 10, 15], choices=[5, 10, 15])
    p.add_argument("--splits", nargs="+", default=list(SPLITS), choices=SPLITS)
    p.add_argument("--train-per-relation", type=int, default=20, help="seeded cap per seen relation (a reduction)")
    p.add_argument("--dev-per-relation", type=int, default=30, help="seeded cap per eval relation")
    p.add_argument("--test-per-relation", type=int, default=None, help="seeded cap per unseen relation (default all)")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoder", default=DEFAULT_ENCODER, help="encoder name or local model directory")
    p.add_argument("--descriptions", choices=sorted(DESCRIPTIONS), default="pid2name")
    p.add_argument("--limit", type=int, default=None, help="smoke tests: train on a seeded N of the seen relations")
    p.add_argument("--threads", type=int, default=2, help="torch threads (speed is timed with these)")
    p.add_argument("--speed-m", type=int, default=15, choices=[5, 10, 15])
    p.add_argument("--speed-split", default="ori", choices=SPLITS)
    p.add_argument("--speed-instances", type=int, default=200)
    p.add_argument("--speed-sizes", type=int, nargs="+", default=[5, 20, 80, 193])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--skip", nargs="*", default=[], choices=["speed", "abstain"])
    p.add_argument("--dry-run", action="store_true", help="print the plan and the expected time, run nothing")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    add_runs_arguments(p)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.time()
    pool = fewrel_pool(DATA)
    types = {r.id: r for r in read_relation_types(DATA / DESCRIPTIONS[args.descriptions]) if r.id in pool}
    representer = ZeroShotRelationExtractor.new(args.encoder).module.instance  # its tokenizer and length limit
    dropped = 0
    for r, exs in pool.items():
        too_long = representer.too_long(exs)
        dropped += len(too_long)
        pool[r] = [ex for i, ex in enumerate(exs) if i not in too_long]
    del representer
    pairs = [(m, s) for m in args.m for s in args.splits]
    if "speed" not in args.skip and (args.speed_m, args.speed_split) not in pairs:
        pairs.append((args.speed_m, args.speed_split))
    plan = {pair: split_data(pool, *pair, args) for pair in pairs}
    base = {"bench": "zeroshot", "encoder": args.encoder, "descriptions": args.descriptions,
            "train_per_relation": args.train_per_relation, "dev_per_relation": args.dev_per_relation,
            "test_per_relation": args.test_per_relation, "epochs": args.epochs, "lr": args.lr,
            "batch_size": args.batch_size, "top_k": args.top_k, "seed": args.seed, "limit": args.limit,
            "shots": SHOTS, "abstain": "abstain" not in args.skip}
    total = estimate(list(plan.values()), args)
    log(f"{len(pairs)} runs, {sum(len(d['train']) for d in plan.values())} training examples, "
        f"{sum(len(d['test']) for d in plan.values())} test instances; expected about {total / 3600:.1f} h on 2 cores "
        f"(at ~{TRAIN_RATE} training examples/s, ~{SCORE_RATE} scored instances/s; finished runs are reused)")
    if args.dry_run:
        for (m, split), d in plan.items():
            log(f"  m={m}, split {split}: {len(d['train'])} train, {len(d['dev'])} dev, {len(d['test'])} test, "
                f"about {estimate([d], args) / 60:.0f} min")
        return {"plan": {f"{m} {split}": {k: len(d[k]) for k in ("train", "dev", "test")}
                         for (m, split), d in plan.items()}, "expected_seconds": total}
    sizes = sorted(len(v) for v in pool.values())
    pool_note = (f"fewrel_zs.fewrel_pool: Wiki80 (PURE dev/test, OpenNRE cp_train_0.1) + FewRel val_wiki, "
                 f"{sum(sizes)} distinct examples of 80 relations (per relation min {sizes[0]}, median "
                 f"{statistics.median(sizes):g}, mean {np.mean(sizes):.1f}, max {sizes[-1]}); {dropped} dropped "
                 "whose entities do not fit the encoder")
    scratch = tempfile.TemporaryDirectory(prefix="knnie-zs-") if args.runs_dir is None else None  # --no-reuse
    try:
        return measure(args, plan, base, types, args.runs_dir or Path(scratch.name), pool_note, started)
    finally:
        if scratch is not None:
            scratch.cleanup()


def measure(args, plan: dict[tuple[int, str], dict[str, Any]], base: dict[str, Any], types: dict[str, RelationType],
            models_root: Path, pool_note: str, started: float) -> dict[str, Any]:
    """Every run of the plan (reused where finished), the speed part (its model kept under `models_root`),
    and the results files."""
    pairs = list(plan)
    runs: dict[int, list[dict]] = {}
    models: dict[tuple[int, str], Path | None] = {}
    for i, (m, split) in enumerate(pairs):
        data = plan[(m, split)]
        key = base | {"m": m, "split": split, "sizes": [len(data[k]) for k in ("train", "dev", "test")]}
        model_dir = None
        if (m, split) == (args.speed_m, args.speed_split) and "speed" not in args.skip:
            digest = hashlib.sha1(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
            model_dir = models_root / "zeroshot-models" / digest
            models[(m, split)] = model_dir
        log(f"run {i + 1}/{len(pairs)}: m={m}, split {split}: {len(data['train'])} train ({len(data['seen'])} "
            f"relations), {len(data['dev'])} dev, {len(data['test'])} test, elapsed {time.time() - started:.0f}s")
        result = cached(args.runs_dir, key, functools.partial(run_split, m, split, data, types, args, model_dir))
        log(f"  run done in {result['seconds']}s" + (" (reused)" if result["reused"] else ""))
        if m in args.m and split in args.splits:
            runs.setdefault(m, []).append(result)
    rows = split_rows(runs)
    report_speed = None
    if "speed" not in args.skip:
        m, split = args.speed_m, args.speed_split
        data, model_dir = plan[(m, split)], models[(m, split)]
        wikizsl = read_relation_types(DATA / WIKIZSL)
        key = base | {"part": "speed", "m": m, "split": split, "threads": args.threads, "repeats": args.repeats,
                      "instances": args.speed_instances, "sizes": args.speed_sizes}

        def timed() -> dict[str, Any]:
            if not (model_dir / "knnie_config.json").is_file():  # the split's run was read back without its model
                train_model(data, types, args, model_dir)
            return speed(ZeroShotRelationExtractor.from_pretrained(model_dir, device="cpu"), data, types, wikizsl,
                         args)

        log(f"speed: the model of m={m}, split {split}, {args.threads} torch thread(s)")
        report_speed = cached(args.runs_dir, key, timed)
        setting = (f"model of m={m} split {split}, {report_speed['instances']} test instances, "
                   f"{report_speed['threads']} torch threads, description cache warm")
        rows += speed_rows(report_speed, setting)
    reduced = [f"training: a seeded {args.train_per_relation} sentences per seen relation"
               + (f", {args.limit} seen relations (seeded)" if args.limit else "")
               + f", {args.epochs} epoch(s), lr {args.lr}, batch {args.batch_size}, seed {args.seed}",
               f"dev: a seeded {args.dev_per_relation} per eval relation (best epoch, abstain calibration)",
               "test: " + ("all sentences" if args.test_per_relation is None
                           else f"a seeded {args.test_per_relation}") + f" per unseen relation, less the {max(SHOTS)} "
               "support examples drawn from each (removed for every row)",
               f"{len(args.splits)} split file(s): {', '.join(args.splits)}",
               f"torch {torch.__version__}, {args.threads} thread(s); speed: {args.repeats} timed repeat(s), median; "
               "shared machine, load averages in the JSON"]
    report = {
        "name": "zeroshot", "command": command(),
        "data": {"pool": pool_note,
                 "splits": "RE-Matching rel2id fewrel_rel2id_{m}_{split}.json (train 75-m, eval 5, test m)",
                 "descriptions": f"{DESCRIPTIONS[args.descriptions]} (name: description); alternative: "
                                 f"--descriptions {'rematching' if args.descriptions == 'pid2name' else 'pid2name'}",
                 "speed distractors": WIKIZSL},
        "encoder": args.encoder, "seeds": [args.seed], "machine": machine(), "reduced": "; ".join(reduced),
        "rows": rows, "per_split": [r for rs in runs.values() for r in rs], "speed": report_speed,
        "seconds": round(time.time() - started, 1),
    }
    md = ["## What differs from the published figures", "", NOTE, "",
          "Abstain: the candidate list is the first ceil(m/2) unseen relations of each split; the other unseen "
          "relations' sentences must get none. Speed: (a) `scores(rerank=False)`, (b) `scores()` (top k), (c) "
          "`scores(top_k=m)`; sizes beyond the split's relations add the other FewRel relations, then Wiki-ZSL "
          "descriptions (58 of the 113 are FewRel P-ids described in other words)."]
    write_results("zeroshot", report, args.out_dir, md)
    return report


if __name__ == "__main__":
    main()
