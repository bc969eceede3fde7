"""Benchmark: training speed of random batches against length-bucketed ones (issue #11, item 14).

A relation extractor (default encoder, entity markers) is fine-tuned for one epoch on a seeded
subset of SemEval-2010 train, once with random batches (``TrainConfig(length_buckets=False)``,
the earlier behaviour) and once with length-bucketed batches (shuffled chunks of 50 batches
sorted by length, batches shuffled again), for each seed; the two kinds alternate so that both
see the same load on a shared machine. Reported: training examples/second (wall time of
`train`, tokenisation included, no dev scoring inside), the share of pad tokens in the epoch's
batches, and dev micro-F1 (without the negative label) after the epoch.

Run: .venv/bin/python bench/train_speed.py [--train-limit 2000] [--seeds 1 2 3] [--threads 1]
Writes bench/results/train_speed.json and .md.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from common import RESULTS, command, log, machine, row, write_results
from knnie import RelationExtractor, TrainConfig, read_relations, train
from knnie.encoders import DEFAULT_ENCODER
from knnie.encoders.batching import batch_order
from knnie.encoders.markers import encode

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "semeval2010" / "opennre"
MODES = {"random batches": False, "length-bucketed batches": True}


def pad_share(extractor: RelationExtractor, examples: list, config: TrainConfig) -> float:
    """Pad tokens / all tokens of the first epoch's batches."""
    lengths = [len(ids) for ids in encode(extractor.tokenizer, examples, set(extractor.config.entity_types),
                                          extractor.config.max_length).input_ids]
    batches = batch_order(lengths, config.batch_size, True, config.seed, config.length_buckets)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - sum(lengths) / padded


def one_run(train_set: list, dev_set: list, labels: list[str], seed: int, buckets: bool, lr: float) -> dict[str, Any]:
    extractor = RelationExtractor.new(labels)
    config = TrainConfig(epochs=1, lr=lr, seed=seed, length_buckets=buckets)
    load = os.getloadavg()[0]
    start, cpu_start = time.perf_counter(), time.process_time()
    train(extractor, train_set, [], config)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    f1 = extractor.evaluate(dev_set)["vanilla"]["micro_f1"]
    return {"seed": seed, "buckets": buckets, "examples_per_s": len(train_set) / seconds, "seconds": seconds,
            "examples_per_cpu_s": len(train_set) / cpu, "cpu_seconds": cpu,
            "pad_share": pad_share(extractor, train_set, config), "dev_micro_f1": f1, "load": load}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train-limit", type=int, default=2000, help="seeded subset of SemEval train")
    ap.add_argument("--dev-limit", type=int, default=None, help="SemEval dev examples scored (default: all)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    full = read_relations(DATA / "train.txt")
    train_set = [full[i] for i in sorted(random.Random(0).sample(range(len(full)), min(args.train_limit, len(full))))]
    full_dev = read_relations(DATA / "dev.txt")
    dev_set = full_dev[: args.dev_limit]
    labels = sorted({ex.label for ex in full + full_dev})
    runs = []
    for seed in args.seeds:
        for mode, buckets in (MODES.items() if seed % 2 else reversed(MODES.items())):  # alternate who goes first
            runs.append(one_run(train_set, dev_set, labels, seed, buckets, args.lr) | {"mode": mode})
            log(f"seed {seed}, {mode}: {runs[-1]}")
    rows = []
    for mode in MODES:
        mine = [r for r in runs if r["mode"] == mode]
        for metric, key, scale in (("training examples/s (wall)", "examples_per_s", 1),
                                   ("training examples per CPU second", "examples_per_cpu_s", 1),
                                   ("pad share of batch tokens (%)", "pad_share", 100),
                                   ("dev micro-F1", "dev_micro_f1", 100)):
            values = [scale * r[key] for r in mine]
            rows.append(row("SemEval-2010", f"1 epoch on {len(train_set)} train examples", mode, metric, values,
                            median=statistics.median(values)))
    for metric, key in (("speed-up, wall (same seed)", "examples_per_s"), ("speed-up, CPU time (same seed)",
                                                                           "examples_per_cpu_s")):
        speedups = [b[key] / a[key] for a, b in zip(*([r for r in runs if r["mode"] == m] for m in MODES))]
        rows.append(row("SemEval-2010", f"1 epoch on {len(train_set)} train examples", "bucketed / random",
                        metric, speedups, median=statistics.median(speedups)))
    loads = [r["load"] for r in runs]
    report = {
        "command": command(), "data": str(DATA / "{train,dev}.txt"), "encoder": DEFAULT_ENCODER, "seeds": args.seeds,
        "machine": machine(),
        "reduced": [f"1 epoch on a seeded {len(train_set)} of {len(full)} SemEval train examples (batch 32, lr "
                    f"{args.lr}); dev: {len(dev_set)} of {len(full_dev)}; torch {torch.__version__} with "
                    f"{args.threads} thread(s) on a shared machine, load average {min(loads):.1f}–{max(loads):.1f} "
                    "at the runs' starts; the two kinds of batches alternate, each seed trains both"],
        "rows": rows, "runs": runs,
    }
    write_results("train_speed", report, args.out_dir, [
        "mean/std over seeds; the JSON's rows also carry the median. Wall time on shared cores moves with the other "
        "processes' load; CPU time (time.process_time of this process, one torch thread) much less, so the CPU-time "
        "speed-up is the figure to trust. The speed-up pairs runs of the same seed, which ran back to back."])
    return report


if __name__ == "__main__":
    main()
