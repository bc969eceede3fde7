"""Benchmark: the K-shot supervised protocol (TKRE, issue 14) on SemEval-2010 Task 8 and Wiki80.

For K examples per relation (`knnie.tasks.fewshot.kshot.sample_kshot`, seeds 0-4), fine-tune the bundled encoder
with a PURE-style head on the K-shot training set, then test on the test set. Dev is a K-shot set sampled the same
way (same K, same seed) from the dev split, the honest few-shot setting: it picks the epoch (the best of at most
--epochs, as `knnie train` does), the learning rate (a grid per dataset, on seed 0 of its first setting; that lr
is then used for every K and variant) and the memory's k, T, λ (`tune`). Rows, per dataset and K (mean ± std over
the sampled sets):

* fine-tune only (the head alone);
* + kNN memory of the K-shot training set (kNN-RE interpolation; kNN-only too);
* + pre-trained encoder (`knnie fewshot pretrain`'s MSLM + SCL encoder, bench/.runs/fewshot/enc_mslm_scl) as the
  starting point, SemEval only: that encoder was pre-trained on Wiki80 sentences (the Wiki80 test ones included,
  with their labels), so a Wiki80 row would be measured on its own training data and is left out;
* + synthetic data (SemEval K = 8: the LLM's examples for that K-shot set, `knnie fewshot generate`, added to the
  K-shot training set and to the memory).

Metrics: SemEval's official score (macro-F1 over the 9 relations, Other excluded, direction counted:
`semeval_official_f1`) and micro-F1 without Other; Wiki80 micro-F1 over the 80 relations (= accuracy, as kNN-RE
reports). Data: SemEval OpenNRE train/dev/test; Wiki80 train = CP's cp_train_0.1 minus the sentences in the kNN-RE
dev and test (`knn_re.load`), dev/test = kNN-RE's.

Run from the repository root (PYTHONPATH=. when knnie is installed from another checkout):
    python bench/fewshot_kshot.py prepare          # the SemEval K = 8 sets and schema the LLM benchmark reads
    python bench/fewshot_kshot.py run              # the default plan; start it twice to use two cores
    python bench/fewshot_kshot.py run --report-only   # the results of the runs finished so far
    python bench/fewshot_kshot.py run --plan semeval:8:2 --epochs 1 --limit-test 50 \\
        --out-dir /tmp/ks --runs-dir /tmp/ks/runs    # smoke
Each finished run is kept in --runs-dir (bench/.runs) and reused (resume); processes started side by side share
the runs (each run is claimed by a lock). The results are rewritten after every run, so an interrupted benchmark
reports what it finished (n says how many sampled sets a row has).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from common import RESULTS, add_runs_arguments, cached, command, log, machine, row, write_results
from fewshot_data import ARTEFACTS
from knn_re import DATASETS, load
from knnie import RelationExample, RelationExtractor, TrainConfig, read_relations, train
from knnie.encoders import DEFAULT_ENCODER
from knnie.errors import KnnieError
from knnie.evaluation.relations import relation_report
from knnie.io import file_digest, locked, write_json, write_jsonl
from knnie.tasks.fewshot.kshot import sample_kshot

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = ARTEFACTS / "kshot"
PRETRAINED = ARTEFACTS / "enc_mslm_scl"
NAMES = {"semeval": "SemEval-2010", "wiki80": "Wiki80"}
VARIANTS = {"semeval": ("semeval", "base"), "wiki80": ("wiki80-10", "base"), "pretrained": ("semeval", "pretrained"),
            "synth": ("semeval", "synth")}
METHODS = {"vanilla": "fine-tune only", "knn": "kNN-only over the K-shot memory (λ=1)",
           "knn_re": "+ kNN memory of the K-shot set"}
PREFIX = {"base": "", "pretrained": "pre-trained encoder (MSLM+SCL) ", "synth": "K-shot + synthetic data "}
TKRE = ("TKRE (Guo et al., IJCAI 2025) reports K-shot results on TACRED only, which is not available here; "
        "its figures are not comparable with these (other data, other encoder).")

# SemEval-2010 Task 8's nine relations (Hendrickx et al., 2010), in our words: (name, what e1 and e2 are).
# Each is directed: in "R(e1,e2)" the first marked nominal e1 is the head and e2 the tail; "R(e2,e1)" swaps roles.
SEMEVAL_RELATIONS = {
    "Cause-Effect": ("cause", "effect", "brings about, produces or leads to"),
    "Instrument-Agency": ("instrument", "agent", "is the tool, device or means used by"),
    "Product-Producer": ("product", "producer", "is made, created or produced by"),
    "Content-Container": ("content", "container", "is held or carried inside"),
    "Entity-Origin": ("entity", "origin", "comes from, is derived from or starts out at"),
    "Entity-Destination": ("entity", "destination", "moves towards or ends up in"),
    "Component-Whole": ("component", "whole", "is a functional part or piece of"),
    "Member-Collection": ("member", "collection", "is one member of the group"),
    "Message-Topic": ("message", "topic", "is a communication (text, talk, sign) about"),
}


def semeval_schema() -> list[dict[str, str]]:
    """The 19 SemEval labels in `read_relation_types` format: both directions of each relation, and Other."""
    schema = []
    for relation, (first, second, verb) in SEMEVAL_RELATIONS.items():
        for head, tail, roles in ((first, second, "e1,e2"), (second, first, "e2,e1")):
            sentence = f"the head {verb} the tail" if roles == "e1,e2" else f"the tail {verb} the head"
            schema.append({"id": f"{relation}({roles})", "name": f"{head} - {tail}",
                           "description": f"{sentence}: the head (e1) is the {head}, the tail (e2) the {tail}"})
    schema.append({"id": "Other", "name": "other",
                   "description": "none of the nine relations holds between the head (e1) and the tail (e2), "
                                  "in either direction"})
    return schema


def prepare(shared: Path, out: Path, k: int, seeds: range) -> None:
    """Write out/semeval_schema.json and out/semeval_k{k}_s{seed}.jsonl (atomic writes)."""
    write_json(out / "semeval_schema.json", semeval_schema())
    train_set = read_relations(shared / DATASETS["semeval"].train)
    for seed in seeds:
        chosen, summary = sample_kshot(train_set, k, seed)
        write_jsonl(out / f"semeval_k{k}_s{seed}.jsonl", (ex.to_record() for ex in chosen))
        log(f"semeval K={k} seed {seed}: {summary.describe()}")


def synthetic(k: int, seed: int, cap: int) -> tuple[Path, list[RelationExample]]:
    """The LLM's synthetic examples for the SemEval K-shot set of `seed`, at most `cap` per relation (seeded)."""
    path = SETS / f"semeval_k{k}_s{seed}.synth.jsonl"
    return path, sample_kshot(read_relations(path), cap, seed)[0]


def run_one(dataset: str, variant: str, k: int, seed: int, lr: float, data: dict[str, list[RelationExample]],
            labels: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Fine-tune on one K-shot set, build its memory, tune on the K-shot dev set, score the test set."""
    train_set, summary = sample_kshot(data["train"], k, seed)
    dev_set, _ = sample_kshot(data["dev"], k, seed)
    if variant == "synth":
        train_set = train_set + synthetic(k, seed, args.synth_per_relation)[1]
    encoder = str(PRETRAINED) if variant == "pretrained" else args.encoder
    extractor = RelationExtractor.new(labels, encoder, device="cpu")
    start = time.perf_counter()
    history = train(extractor, train_set, dev_set, TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=lr,
                                                               seed=seed))
    train_seconds = time.perf_counter() - start
    extractor.attach_memory("kshot", extractor.build_memory(train_set))
    tuned = extractor.tune(dev_set)
    p, _ = extractor.method_distributions(data["test"])
    gold = [ex.label for ex in data["test"]]
    space = extractor.label_space
    reports = {m: relation_report(gold, [space[i] for i in probs.argmax(-1)], extractor.negative_label)
               for m, probs in p.items()}
    for r in reports.values():
        r.pop("per_relation")
    best = max(history, key=lambda h: h.get("dev_f1", 0.0))
    log(f"{dataset} {variant} K={k} seed {seed} lr {lr}: best epoch {best['epoch']} (dev {best['dev_f1']:.3f}), "
        + ", ".join(f"{m} {100 * r.get('semeval_official_f1', r['micro_f1']):.2f}" for m, r in reports.items()))
    return {"train": len(train_set), "dev": len(dev_set), "short": summary.short, "history": history,
            "best_epoch": best["epoch"], "dev_f1": best["dev_f1"], "tuned": tuned, "reports": reports,
            "train_seconds": round(train_seconds, 1)}


def key_of(dataset: str, variant: str, k: int, seed: int, lr: float, test: int, args: argparse.Namespace
           ) -> dict[str, Any]:
    """Everything that defines a run (the pre-trained encoder and the synthetic file by their content)."""
    key = {"bench": "fewshot_kshot", "dataset": dataset, "variant": variant, "k": k, "seed": seed, "lr": lr,
           "epochs": args.epochs, "batch_size": args.batch_size, "test": test, "encoder": args.encoder}
    if variant == "pretrained":
        key["encoder"] = file_digest(PRETRAINED / "model.safetensors")
    if variant == "synth":
        key["synth"] = [file_digest(synthetic(k, seed, 1)[0]), args.synth_per_relation]
    return key


def available(variant: str, k: int, seeds: list[int]) -> list[int]:
    """The seeds a variant can run now: the pre-trained encoder and synthetic files come from other benchmarks."""
    if variant == "pretrained":
        return seeds if (PRETRAINED / "model.safetensors").exists() else []
    if variant == "synth":
        return [s for s in seeds if (SETS / f"semeval_k{k}_s{s}.synth.jsonl").exists()]
    return seeds


class NotRun(Exception):
    """A run that --report-only finds unfinished."""


def not_run() -> dict[str, Any]:
    raise NotRun


Task = Callable[[], tuple[dict[str, Any], Callable[[], dict[str, Any]]] | None]


def shared_runs(tasks: list[Task], args: argparse.Namespace, done: Callable[[int, dict[str, Any]], None]) -> None:
    """`cached` over tasks that several processes of this benchmark may share (start two to use two cores): each
    task gives (key, compute), or None while its input is not there. A process claims a run by its lock, skips runs
    another one holds, then waits for those. `done(i, result)` after each finished task; --report-only computes
    nothing and waits for nothing."""
    left = list(range(len(tasks)))
    for blocking in (False, True) if not args.report_only else (False,):
        for i in list(left):
            made = tasks[i]()
            if made is None:
                continue
            key, compute = made
            blob = json.dumps(key, sort_keys=True, default=str)
            claim = args.runs_dir / f"{hashlib.sha1(blob.encode()).hexdigest()[:16]}.claim"
            with contextlib.ExitStack() as stack:
                try:
                    stack.enter_context(locked(claim, wait=24 * 3600 if blocking else 0))
                except KnnieError:
                    continue  # another process is running it
                try:
                    result = cached(args.runs_dir, key, not_run if args.report_only else compute)
                except NotRun:
                    continue
            left.remove(i)
            done(i, result)


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    loaded: dict[str, tuple[dict[str, list[RelationExample]], list[str]]] = {}
    finished: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
    runs = []  # (dataset, variant, k, seed) of each run of the --plan items, in order
    for item in args.plan:
        name, k, *sets = item.split(":")
        dataset, variant = VARIANTS[name]
        runs += [(dataset, variant, int(k), seed) for seed in (args.seeds[:int(sets[0])] if sets else args.seeds)]
        if dataset not in loaded:
            loaded[dataset] = load_dataset(dataset, args)

    def task(dataset: str, variant: str, k: int, seed: int, lr: float) -> Task:
        """The run, once its input is there (the pre-trained encoder, the synthetic data come from other benchmarks)."""
        def made() -> tuple[dict[str, Any], Callable[[], dict[str, Any]]] | None:
            if not available(variant, k, [seed]):
                return None
            data, labels = loaded[dataset]
            return (key_of(dataset, variant, k, seed, lr, len(data["test"]), args),
                    functools.partial(run_one, dataset, variant, k, seed, lr, data, labels, args))
        return made

    lrs = {dataset: args.lrs[0] for dataset in loaded}
    args.lr_grid = {}
    if len(args.lrs) > 1:  # the lr grid of each dataset: its first run in the plan, chosen on its K-shot dev set
        for dataset in loaded:
            first = next(r for r in runs if r[0] == dataset)
            grid: dict[float, float] = {}
            shared_runs([task(*first, x) for x in args.lrs], args,
                        lambda i, r, grid=grid: grid.__setitem__(args.lrs[i], r["dev_f1"]))
            if len(grid) < len(args.lrs):
                raise SystemExit(f"the lr grid of {dataset} is not finished ({grid}): nothing to report yet")
            lrs[dataset] = max(grid, key=lambda x: grid[x])
            args.lr_grid[dataset] = {"setting": "{} {} K={} seed {}".format(*first), "dev_micro_f1": grid,
                                     "chosen": lrs[dataset]}
            log(f"lr grid: {args.lr_grid[dataset]}")

    def done(i: int, result: dict[str, Any]) -> None:
        dataset, variant, k, seed = runs[i]
        finished.setdefault((dataset, variant, k), []).append(result | {"seed": seed, "lr": lrs[dataset]})
        summarise(finished, loaded, args)

    shared_runs([task(*r, lrs[r[0]]) for r in runs], args, done)
    missing = [r for r in runs if not available(r[1], r[2], [r[3]])]
    if missing:
        log(f"not run, their input is not there: {missing}")


def load_dataset(dataset: str, args: argparse.Namespace) -> tuple[dict[str, list[RelationExample]], list[str]]:
    """Train, dev and test pools (Wiki80's test: a seeded --wiki80-test-per-relation of each relation) and the
    head's labels (SemEval: all 19, though train.txt has no Entity-Destination(e2,e1))."""
    train_set, dev_set, test_set = load(DATASETS[dataset], None)
    if dataset != "semeval" and args.wiki80_test_per_relation:
        test_set = sample_kshot(test_set, args.wiki80_test_per_relation, 0)[0]
    if args.limit_test:
        test_set = test_set[:args.limit_test]
    labels = ([r["id"] for r in semeval_schema()] if dataset == "semeval"
              else sorted({ex.label for ex in train_set}))
    log(f"{dataset}: pools train {len(train_set)}, dev {len(dev_set)}, test {len(test_set)}; {len(labels)} labels")
    return {"train": train_set, "dev": dev_set, "test": test_set}, labels


def summarise(finished: dict[tuple[str, str, int], list[dict[str, Any]]], loaded: dict, args: argparse.Namespace
              ) -> None:
    """Write the results so far: a row per (dataset, K, variant, method, metric)."""
    rows = []
    for (dataset, variant, k), runs in sorted(finished.items()):
        runs.sort(key=lambda r: r["seed"])
        name = NAMES["semeval" if dataset == "semeval" else "wiki80"]
        metrics = ([("semeval_official_f1", "test official macro-F1 (9 relations, direction counted)"),
                    ("micro_f1", "test micro-F1 (Other excluded)")] if dataset == "semeval"
                   else [("micro_f1", "test micro-F1 (= accuracy)")])
        setting = (f"K={k} ({runs[0]['train']} train, {runs[0]['dev']} dev), ≤{args.epochs} epochs, "
                   f"lr {runs[0]['lr']:g}")
        for key, metric in metrics:
            for m, method in METHODS.items():
                rows.append(row(name, setting, PREFIX[variant] + method, metric,
                                [100 * r["reports"][m][key] for r in runs]))
    tests = {d: len(v[0]["test"]) for d, v in loaded.items()}
    reduced = [f"at most {args.epochs} epochs (the best on the K-shot dev set kept), batch {args.batch_size}",
               f"lr grid {args.lrs} per dataset, only on seed 0 of its first setting (K = 8), its choice used for "
               "every K and variant",
               *([f"Wiki80 test = {tests['wiki80-10']} sentences ({args.wiki80_test_per_relation} per relation, "
                  "seeded) of 5,600"] if "wiki80-10" in tests else []),
               "sampled sets per setting: n in each row (fewer than 5 where the CPU time ran out)",
               f"synthetic data: at most {args.synth_per_relation} per relation (seeded)",
               "Wiki80 + pre-trained encoder left out: that encoder was pre-trained on Wiki80 test sentences "
               "with their labels"]
    if args.limit_test:
        reduced.append(f"test limited to {args.limit_test}")
    report = {"command": command(), "data": {"semeval": "semeval2010/opennre/{train,dev,test}.txt",
                                              "wiki80": "wiki80/opennre/cp_train_0.1.txt minus dev/test sentences; "
                                                        "wiki80/knnre_pure/{dev,test}.json", "test_sizes": tests},
              "encoder": args.encoder, "pretrained_encoder": str(PRETRAINED), "seeds": args.seeds,
              "machine": machine(), "reduced": "; ".join(reduced), "lr_grid": args.lr_grid,
              "rows": rows,
              "per_run": [{"dataset": d, "variant": v, "k": k, **{x: r[x] for x in (
                  "seed", "lr", "train", "short", "best_epoch", "dev_f1", "train_seconds", "seconds")},
                           "tuned": r["tuned"]["memories"]["kshot"]["params"],
                           "test": {m: {x: rep[x] for x in ("micro_f1", "macro_f1", "semeval_official_f1") if x in rep}
                                    for m, rep in r["reports"].items()}}
                          for (d, v, k), runs in sorted(finished.items()) for r in runs]}
    write_results("fewshot_kshot", report, args.out_dir, notes(report))


def notes(report: dict[str, Any]) -> list[str]:
    """What the table does not say: the lr grid, each run's chosen epoch and memory settings, and the data notes."""
    md = []
    for grid in report["lr_grid"].values():
        scores = ", ".join(f"{lr:g}: {100 * f1:.2f}" for lr, f1 in grid["dev_micro_f1"].items())
        md += [f"lr grid ({grid['setting']}, K-shot dev micro-F1): {scores}; chosen {grid['chosen']:g}.", ""]
    md += ["## Runs: the epoch and memory settings chosen on each K-shot dev set", "",
           "| dataset | variant | K | seed | train | best epoch | dev micro-F1 | k | T | λ | fine-tune only | "
           "+ kNN memory | seconds |", "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["per_run"]:
        score = "semeval_official_f1" if r["dataset"] == "semeval" else "micro_f1"
        t = r["tuned"]
        md.append(f"| {r['dataset']} | {r['variant']} | {r['k']} | {r['seed']} | {r['train']} | {r['best_epoch']} | "
                  f"{100 * r['dev_f1']:.2f} | {t['k']} | {t['temperature']:.3g} | {t['lam']:.1f} | "
                  f"{100 * r['test']['vanilla'][score]:.2f} | {100 * r['test']['knn_re'][score]:.2f} | "
                  f"{r['seconds']} |")
    md += ["", "Test scores in this table: SemEval's official macro-F1, Wiki80's micro-F1. SemEval's OpenNRE "
           "train.txt has no Entity-Destination(e2,e1) example (its one training example is in dev.txt), so a K-shot "
           "training set has 18 labels and the head 19; Other is sampled like any label (K examples). In the synthetic "
           "rows the memory holds the synthetic examples too. Seconds are wall time on a CPU shared with other jobs.",
           "", TKRE]
    return md


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=DATA)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", help="write the SemEval K = 8 sets and schema for the other benchmarks")
    p.add_argument("--out", type=Path, default=SETS)
    r = sub.add_parser("run", help="the benchmark")
    r.add_argument("--plan", nargs="+",
                   default=["semeval:8", "wiki80:8:2", "semeval:16:3", "pretrained:8:3", "synth:8:3", "semeval:32:2"],
                   help="settings in the order they run: {semeval,wiki80,pretrained,synth}:K[:N], N: only the first N "
                        "--seeds (sampled sets)")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    r.add_argument("--wiki80-test-per-relation", type=int, default=20, help="0: the whole test set")
    r.add_argument("--limit-test", type=int, default=None, help="first N test examples (smoke tests)")
    r.add_argument("--epochs", type=int, default=8)
    r.add_argument("--batch-size", type=int, default=8)
    r.add_argument("--lrs", type=float, nargs="+", default=[1e-4, 3e-4])
    r.add_argument("--synth-per-relation", type=int, default=16)
    r.add_argument("--encoder", default=DEFAULT_ENCODER)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--out-dir", type=Path, default=RESULTS)
    r.add_argument("--report-only", action="store_true", help="run nothing: report the finished runs")
    add_runs_arguments(r)
    args = parser.parse_args(argv)
    if args.step == "run" and args.runs_dir is None:
        parser.error("run keeps its runs in --runs-dir (processes share them): --no-reuse is not supported")
    if args.step == "prepare":
        prepare(args.shared, args.out, 8, range(5))
    else:
        run(args)


if __name__ == "__main__":
    main()
