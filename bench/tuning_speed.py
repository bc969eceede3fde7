"""Benchmark: knnie's single-search tuner against one index build + one search per grid point.

What it measures
    The wall time to score the full kNN-RE grid on a dev set — k ∈ {2, 4, …, 256} × 13
    temperatures (``temperature_grid`` of that kernel and k) × 11 λ (``LAMBDA_GRID``) × 2
    kernels (plain, rbf) = 2,288 points — in two ways, in the same process:

    * knnie: ``knnie.memory.tuner.tune_grid``. One fresh flat index over the memory, ONE
      search with k_max = 256, every grid point computed from it with array math. The time
      includes the index build and the search.
    * naive (what the kNN-RE anchor code does): for every (kernel, k, T, λ), build a fresh
      flat index (a new ``knnie.memory.Memory``), search the dev vectors with k, compute
      p_kNN with ``knn_probs``, interpolate with the scalar λ, take the argmax and score it.

    Both score with the same function (micro-F1 without the negative label,
    ``micro_f1_ids``) into a [kernel, k, T, λ] array; the best point is the first maximum
    in that order (``np.argmax``). The script reports both times, their ratio
    (naive / knnie), whether both pick the same best point and whether the score arrays
    are identical.

    Where the naive loop over every point would take hours (large dev sets or memories),
    ``--naive-points N`` runs it on a seeded random sample of N points instead: its time is
    extrapolated to the whole grid (a stated reduction), and the score arrays and best
    points are compared on the sampled points only.

Vectors
    The datasets and their preparation are those of ``knn_re.py`` (``--dataset``). Real
    relation vectors of a knnie ``RelationExtractor``: ``--model DIR`` loads one;
    otherwise one is trained inside the benchmark (1 epoch on a 2,000-example random
    subset of train by default, a stated reduction). The memory holds the vectors of the
    whole training file; the queries are the dev vectors.

Run (from the repository root)
    .venv/bin/python bench/tuning_speed.py                      # SemEval-2010, a few minutes
    .venv/bin/python bench/tuning_speed.py --model runs/semeval  # an already trained model
    .venv/bin/python bench/tuning_speed.py --dataset scierc --naive-points 100
    .venv/bin/python bench/tuning_speed.py --limit-train 40 --limit-dev 30 --train-subset 40 \\
        --out-dir /tmp/bench                                     # smoke test, seconds

Writes ``tuning_speed.json`` and ``.md`` (SemEval) or ``tuning_speed_<dataset>.json`` and
``.md`` to ``--out-dir`` (bench/results).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common import command, log, machine, row
from knn_re import DATASETS
from knn_re import load as load_dataset
from knnie import Memory, RelationExample, RelationExtractor, TrainConfig, train
from knnie.encoders.loading import DEFAULT_ENCODER
from knnie.memory.knn import KERNELS, interpolate, kernel_distances, knn_probs
from knnie.memory.tuner import K_GRID, LAMBDA_GRID, GridResult, ScoreFn, grid_points, temperature_grid, tune_grid

NAME = "tuning_speed"
K_MAX = 256
KNNIE = "knnie single-search tuner"
NAIVE = "naive one search per point"


@dataclass
class Vectors:
    """Everything the two tuners need: the memory and the dev queries with their p_RE."""

    memory: Memory
    queries: np.ndarray  # (n_dev, dim) relation vectors
    p_model: np.ndarray  # (n_dev, C) the classifier's distribution
    score: ScoreFn
    vanilla_f1: float


@dataclass
class NaiveResult:
    scores: np.ndarray  # [kernel, k, T, λ]; NaN where the point was not run
    temperatures: dict[tuple[int, int, int], float]  # (kernel, k, T) index -> T

    @property
    def ran(self) -> np.ndarray:
        return ~np.isnan(self.scores)

    def best_index(self) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(int(np.nanargmax(self.scores)), self.scores.shape))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dataset", choices=sorted(DATASETS), default="semeval",
                   help="train = the memory (and training data), dev = the queries")
    p.add_argument("--model", default=None, help="trained knnie model directory; if absent, one is trained here")
    p.add_argument("--train-subset", type=int, default=2000, help="examples the in-bench model is trained on")
    p.add_argument("--epochs", type=int, default=1, help="epochs of the in-bench training")
    p.add_argument("--seed", type=int, default=0, help="seed of the training subset and of training")
    p.add_argument("--limit-train", type=int, default=None, help="keep only the first N training examples (smoke)")
    p.add_argument("--limit-dev", type=int, default=None, help="keep only the first N dev examples (smoke)")
    p.add_argument("--repeats", type=int, default=5, help="times the (fast) knnie tuner is timed; naive runs once")
    p.add_argument("--naive-points", type=int, default=None,
                   help="run the naive loop on a seeded sample of N grid points and extrapolate its time")
    p.add_argument("--save-model", default=None, help="save the in-bench model here (reuse it with --model)")
    p.add_argument("--out-dir", default="bench/results", help="where the .json and .md are written")
    return p.parse_args(argv)


# -- data and vectors ----------------------------------------------------------------------
def load_data(args: argparse.Namespace) -> tuple[list[RelationExample], list[RelationExample], list[str]]:
    """Train and dev examples as knn_re.py prepares them (optionally a seeded sample of N, in
    file order: the SemEval files are sorted by label) and the sorted labels of both files."""
    train_set, dev_set, _ = load_dataset(DATASETS[args.dataset], None)
    labels = sorted({ex.label for ex in train_set + dev_set})
    return limit(train_set, args.limit_train, args.seed), limit(dev_set, args.limit_dev, args.seed), labels


def limit(examples: list[RelationExample], n: int | None, seed: int) -> list[RelationExample]:
    if n is None or n >= len(examples):
        return examples
    return [examples[i] for i in sorted(random.Random(seed).sample(range(len(examples)), n))]


def get_extractor(args: argparse.Namespace, train_set: list[RelationExample],
                  labels: list[str]) -> tuple[RelationExtractor, dict[str, Any]]:
    """The model whose vectors are benchmarked, and what was reduced to get it."""
    if args.model:
        return RelationExtractor.from_pretrained(args.model, memories=False), {
            "model": f"loaded from {args.model}", "training_subset": None, "epochs": None}
    subset = random.Random(args.seed).sample(train_set, min(args.train_subset, len(train_set)))
    extractor = RelationExtractor.new(labels)
    log(f"training on {len(subset)} examples for {args.epochs} epoch(s)")
    start = time.perf_counter()
    history = train(extractor, subset, [], TrainConfig(epochs=args.epochs, seed=args.seed))
    if args.save_model:
        extractor.save_pretrained(args.save_model)
    reduced = {
        "model": f"trained inside the bench: {len(subset)} of {len(train_set)} training examples "
                 f"(random, seed {args.seed}), {args.epochs} epoch(s), no dev checkpoint selection",
        "training_subset": len(subset), "epochs": args.epochs,
        "train_seconds": round(time.perf_counter() - start, 1), "train_loss": history[-1]["train_loss"],
    }
    return extractor, reduced


def get_vectors(extractor: RelationExtractor, train_set: list[RelationExample],
                dev_set: list[RelationExample]) -> Vectors:
    log(f"encoding the memory ({len(train_set)}) and the dev set ({len(dev_set)})")
    memory = extractor.build_memory(train_set)
    queries, p_model = extractor.encode(dev_set)
    score = extractor.score_fn(extractor.label_ids(dev_set))
    return Vectors(memory, queries, p_model, score, float(score(p_model.argmax(-1)[None])[0]))


def fresh_memory(memory: Memory) -> Memory:
    """The same keys and values with no index yet: the next search builds one."""
    c = memory.config
    return Memory(memory.keys, memory.values, memory.records, c.labels, c.fingerprint, c.index, c.fp16)


# -- the two tuners ------------------------------------------------------------------------
def run_knnie(v: Vectors) -> GridResult:
    """One index build, one search with k_max, every grid point by array math."""
    memory = fresh_memory(v.memory)
    dist, ids = memory.search(v.queries, K_MAX)
    return tune_grid(dist, memory.values[ids], v.p_model, v.score)


def naive_points(ks: tuple[int, ...], sample: int | None, seed: int) -> list[tuple[int, int, int, int]]:
    """Every [kernel, k, T, λ] index in grid order, or a seeded sample of them (in grid order)."""
    n_t = len(temperature_grid(np.ones((1, 1))))
    points = list(np.ndindex(len(KERNELS), len(ks), n_t, len(LAMBDA_GRID)))
    if sample is None or sample >= len(points):
        return points
    return sorted(random.Random(seed).sample(points, sample))


def run_naive(v: Vectors, ks: tuple[int, ...], points: list[tuple[int, int, int, int]]) -> NaiveResult:
    """One index build and one search per (kernel, k, T, λ), as the anchor code does."""
    n_labels, n_t = v.p_model.shape[1], len(temperature_grid(np.ones((1, 1))))
    scores = np.full((len(KERNELS), len(ks), n_t, len(LAMBDA_GRID)), np.nan)
    temps: dict[tuple[int, int, int], float] = {}
    for done, (ki, kk, ti, li) in enumerate(points, 1):
        kernel = KERNELS[ki]
        memory = fresh_memory(v.memory)
        dist, ids = memory.search(v.queries, ks[kk])
        t = temperature_grid(kernel_distances(dist, kernel))[ti]
        p_knn = knn_probs(dist, memory.values[ids], n_labels, t, kernel)
        pred = interpolate(p_knn, v.p_model, LAMBDA_GRID[li]).argmax(-1)
        scores[ki, kk, ti, li] = v.score(pred[None])[0]
        temps[ki, kk, ti] = t
        if done % 100 == 0 or done == len(points):
            log(f"naive: {done}/{len(points)} points")
    return NaiveResult(scores, temps)


def timed(fn, *args) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


# -- report --------------------------------------------------------------------------------
def point(ks: tuple[int, ...], temperature: float, index: tuple[int, ...], score: float) -> dict[str, Any]:
    ki, kk, _, li = index
    return {"kernel": KERNELS[ki], "k": ks[kk], "temperature": temperature, "lambda": LAMBDA_GRID[li],
            "index": list(index), "dev_micro_f1": score}


def build_report(args: argparse.Namespace, sizes: dict[str, int], reduced: dict[str, Any], v: Vectors,
                 grid: GridResult, knnie_times: list[float], naive: NaiveResult, naive_time: float,
                 load: dict[str, list[float]]) -> dict[str, Any]:
    assert tuple(grid.kernels) == KERNELS
    ran = naive.ran
    sampled = int(ran.sum()) < grid.scores.size
    on_sample = np.where(ran, grid.scores, -np.inf)  # knnie's scores where naive ran
    knnie_index = tuple(int(i) for i in np.unravel_index(int(np.argmax(on_sample)), on_sample.shape))
    temperature = lambda index: grid.temperatures[index[0]][index[1]][index[2]]  # noqa: E731
    knnie_best = point(grid.ks, temperature(knnie_index), knnie_index, float(on_sample[knnie_index]))
    naive_index = naive.best_index()
    naive_best = point(grid.ks, naive.temperatures[naive_index[:3]], naive_index, float(naive.scores[naive_index]))
    knnie_mean = float(np.mean(knnie_times))
    naive_full = naive_time * grid.scores.size / int(ran.sum())  # = naive_time when every point ran
    ratio = naive_full / knnie_mean
    ds = DATASETS[args.dataset]
    dataset = f"{ds.name} dev"
    setting = (f"{sizes['memory_size']} train keys, {sizes['dev_size']} dev queries, {grid.scores.size} grid points, "
               "flat L2")
    naive_metric = f"tuning wall time (s){', extrapolated from the sampled points' if sampled else ''}"
    rows = [
        row(dataset, setting, KNNIE, "tuning wall time (s)", knnie_times),
        row(dataset, setting, NAIVE, naive_metric, [naive_full]),
        row(dataset, setting, "naive / knnie", "speed-up ratio (×)", [ratio]),
        row(dataset, setting, KNNIE, "best dev micro-F1", [knnie_best["dev_micro_f1"]]),
        row(dataset, setting, NAIVE, "best dev micro-F1", [naive_best["dev_micro_f1"]]),
        row(dataset, setting, "model alone (no memory)", "dev micro-F1", [v.vanilla_f1]),
    ]
    if sampled:
        reduced["naive"] = (f"naive loop run on {int(ran.sum())} of {grid.scores.size} grid points (random, seed "
                            f"{args.seed}) in {naive_time:.1f} s; its whole-grid time is extrapolated; exactness and "
                            "best points are compared on those points")
    return {
        "name": NAME if args.dataset == "semeval" else f"{NAME}_{args.dataset}",
        "command": command(),
        "data": {"dataset": ds.name, "train": ds.train, "dev": ds.dev, **sizes},
        "encoder": DEFAULT_ENCODER if not args.model else f"{args.model} (its own encoder)",
        "seeds": [args.seed],
        "machine": machine(),
        "load_average": load,  # os.getloadavg() (1, 5, 15 min): other work on the machine during timing
        "reduced": reduced,
        "grid": {"kernels": list(grid.kernels), "ks": list(grid.ks), "temperatures_per_k": len(grid.temperatures[0][0]),
                 "lambdas": list(grid.lambdas), "points": int(grid.scores.size), "k_max_search": K_MAX},
        "knnie_seconds": knnie_mean,
        "knnie_seconds_each": knnie_times,
        "naive_seconds": naive_full,
        "naive_points": int(ran.sum()),
        "ratio": ratio,
        "same_best": knnie_best == naive_best,
        "scores_equal": bool(np.array_equal(grid.scores[ran], naive.scores[ran])),
        "scores_max_abs_diff": float(np.abs(grid.scores[ran] - naive.scores[ran]).max()),
        "temperatures_equal": all(temperature(i) == t for i, t in naive.temperatures.items()),
        "best": {"knnie": knnie_best, "naive": naive_best},
        "rows": rows,
    }


def markdown(report: dict[str, Any]) -> str:
    d, r = report["data"], report["reduced"]
    on = " (on the sampled points)" if report["naive_points"] < report["grid"]["points"] else ""
    best = {k: v for k, v in report["best"]["knnie"].items() if k != "index"}
    setup = [
        ("command", f"`{report['command']}`"),
        ("data", f"{d['dataset']}: memory = {d['memory_size']} vectors of `{d['train']}`, "
                 f"queries = {d['dev_size']} vectors of `{d['dev']}`, {d['labels']} labels"),
        ("encoder", report["encoder"]),
        ("seeds", ", ".join(map(str, report["seeds"]))),
        ("machine", report["machine"]),
        ("load average (1 min)", load_note(report["load_average"])),
        ("reduced", "; ".join(x for x in (r.get("data"), r["model"], r.get("naive")) if x)),
        ("grid", f"{len(report['grid']['kernels'])} kernels × {len(report['grid']['ks'])} k × "
                 f"{report['grid']['temperatures_per_k']} T × {len(report['grid']['lambdas'])} λ = "
                 f"{report['grid']['points']} points"),
        ("same best point" + on, str(report["same_best"])),
        ("score arrays identical" + on, str(report["scores_equal"])),
        ("best point" + on, json.dumps(best)),
    ]
    lines = [f"# {report['name']}", "", "| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in setup), "",
             "| dataset | setting | method | metric | mean | std | n |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {x['dataset']} | {x['setting']} | {x['method']} | {x['metric']} | {x['mean']:.4g} | "
              f"{x['std']:.3g} | {x['n']} |" for x in report["rows"]]
    return "\n".join(lines) + "\n"


def load_note(load: dict[str, list[float]]) -> str:
    """The 1-minute load averages; above the core count, other processes shared the CPU."""
    text = ", ".join(f"{when.replace('_', ' ')} {avg[0]:.1f}" for when, avg in load.items())
    busy = max(avg[0] for avg in load.values()) > (os.cpu_count() or 1)
    return text + (" (above the core count: other processes shared the CPU while timing)" if busy else "")


def write(report: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    name = report["name"]
    (out_dir / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out_dir / f"{name}.md").write_text(markdown(report), encoding="utf-8")
    log(f"wrote {out_dir / name}.json and .md")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    train_set, dev_set, labels = load_data(args)
    extractor, reduced = get_extractor(args, train_set, labels)
    v = get_vectors(extractor, train_set, dev_set)
    sizes = {"train_size": len(train_set), "dev_size": len(dev_set), "memory_size": len(v.memory),
             "labels": len(extractor.config.labels)}
    log(f"knnie tuner, {args.repeats} run(s)")
    load = {"before_knnie": list(os.getloadavg())}
    runs = [timed(run_knnie, v) for _ in range(max(1, args.repeats))]
    grid, knnie_times = runs[0][0], [t for _, t in runs]
    ks = grid_points(min(K_MAX, len(v.memory)), K_GRID)
    log(f"knnie: {np.mean(knnie_times):.3f} s; naive loop over {grid.scores.size} points")
    load["before_naive"] = list(os.getloadavg())
    naive, naive_time = timed(run_naive, v, ks, naive_points(ks, args.naive_points, args.seed))
    load["after_naive"] = list(os.getloadavg())
    if args.limit_train is not None or args.limit_dev is not None:
        reduced["data"] = (f"smoke slice: seeded samples of {len(train_set)} train and {len(dev_set)} dev examples "
                           "(--limit-train/--limit-dev)")
    report = build_report(args, sizes, reduced, v, grid, knnie_times, naive, naive_time, load)
    log(f"knnie {report['knnie_seconds']:.3f} s, naive {naive_time:.1f} s, ratio {report['ratio']:.1f}×, "
        f"same_best {report['same_best']}, scores_equal {report['scores_equal']}")
    write(report, Path(args.out_dir))
    return report


if __name__ == "__main__":
    main()
