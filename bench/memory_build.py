"""Benchmark: a memory of the same labelled examples built three ways on this machine — the
classic one-process build (`front.build_memory` then save, what `knnie memory build` does),
the sharded build in this process (`build_sharded(use_ray=False)`) and the sharded build by Ray
workers on a local instance (`build_sharded(use_ray=True)`) — wall time of each, and whether the
three memories agree: keys allclose (max abs difference), labels and values equal, records equal
in order.

Data: labelled relation examples of FewRel 1.0 val_wiki and 2.0 val_pubmed (converted to OpenNRE
lines, first mention of each entity), Wiki80 (CP's train_0.1 subset and the typed val) and
SemEval-2010 train/dev/test, concatenated in that order and repeated until `--examples` lines, in
one JSON lines file. Model: an untrained `RelationExtractor.new(labels)` with the default encoder
(encoding speed does not depend on training), saved with `save_pretrained`.

Run: .venv/bin/python bench/memory_build.py [--examples 100000] [--workers 2]
Writes bench/results/memory_build.json and .md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import RESULTS, command, log, machine, row, write_results
from knnie import Memory, RelationExtractor, read_relations
from knnie.encoders import DEFAULT_ENCODER
from knnie.memory.build import PART_RECORDS, build_sharded
from knnie.tasks.model_dir import memory_dir
from knnie.tasks.registry import load

DATA = Path("../shared/data")
OPENNRE_FILES = ["wiki80/opennre/cp_train_0.1.txt", "wiki80/opennre/wiki80_val_typed.txt",
                 "semeval2010/opennre/train.txt", "semeval2010/opennre/dev.txt", "semeval2010/opennre/test.txt"]
DATASET = "FewRel val + Wiki80 + SemEval (repeated)"  # the dataset column of every row


def fewrel_lines(path: Path) -> list[str]:
    """FewRel's {relation: [instance]} as OpenNRE lines (each entity's first mention)."""
    lines = []
    for relation, instances in json.loads(path.read_text(encoding="utf-8")).items():
        for x in instances:
            ends = {}
            for side in ("h", "t"):
                mention = x[side][2][0]
                ends[side] = {"name": x[side][0], "pos": [min(mention), max(mention) + 1]}
            lines.append(json.dumps({"token": x["tokens"], **ends, "relation": relation}, ensure_ascii=False))
    return lines


def make_data(out: Path, examples: int) -> tuple[int, list[str]]:
    """`examples` labelled lines in `out`: the sources in order, repeated; returns the number of
    distinct lines and the labels of all of them (the model's labels)."""
    lines = fewrel_lines(DATA / "fewrel/val_wiki.json") + fewrel_lines(DATA / "fewrel/val_pubmed.json")
    for f in OPENNRE_FILES:
        lines += [x for x in (DATA / f).read_text(encoding="utf-8").splitlines() if x.strip()]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(itertools.islice(itertools.cycle(lines), examples)) + "\n", encoding="utf-8")
    return len(lines), sorted({json.loads(x)["relation"] for x in lines})


def agreement(a: Memory, b: Memory) -> dict[str, Any]:
    """How far memory b is from memory a: keys, labels, values, records."""
    same_shape = a.keys.shape == b.keys.shape
    diff = float(np.max(np.abs(np.asarray(a.keys, np.float32) - np.asarray(b.keys, np.float32)))) if same_shape \
        else float("inf")
    return {"keys_shape_equal": same_shape, "keys_max_abs_diff": diff,
            "keys_allclose": bool(same_shape and np.allclose(a.keys, b.keys, rtol=1e-4, atol=1e-5)),
            "labels_equal": a.labels == b.labels,
            "values_equal": bool(len(a) == len(b) and np.array_equal(a.values, b.values)),
            "records_equal": len(a) == len(b) and all(x == y for x, y in zip(a.records, b.records)),
            "sources": (a.sources, b.sources)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", type=int, default=100_000)
    p.add_argument("--workers", type=int, default=2, help="Ray workers (and the local instance's CPUs)")
    p.add_argument("--shards", type=int, default=None, help=f"default: one per {PART_RECORDS:,} examples")
    p.add_argument("--index", default="auto")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--work-dir", type=Path, default=Path("/work/runs/memory_build"))
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    load_start = os.getloadavg()[0]
    shutil.rmtree(args.work_dir, ignore_errors=True)
    data = args.work_dir / "data.jsonl"
    distinct, labels = make_data(data, args.examples)
    model_dir = args.work_dir / "model"
    RelationExtractor.new(labels).save_pretrained(model_dir)
    log(f"{args.examples:,} examples ({distinct:,} distinct, {len(labels)} labels) in {data}; model {model_dir}")
    times: dict[str, dict[str, float]] = {}

    log("one process, classic: read, encode, index, save")
    start = time.perf_counter()
    front = load(model_dir, memories=False, device="cpu")
    examples = read_relations(data)
    encode_start = time.perf_counter()
    memory = front.build_memory(examples, index=args.index, batch_size=args.batch_size, source=data.name)
    memory.index  # noqa: B018 -- an approximate index is built here, not on save
    save_start = time.perf_counter()
    front.attach_memory("classic", memory)
    front.save_memory(model_dir, "classic")
    end = time.perf_counter()
    times["classic"] = {"wall": end - start, "encode + index": save_start - encode_start, "save": end - save_start}
    del front, memory, examples
    log(f"  {times['classic']}")

    def progress(name: str):
        def step(done: int, total: int, n: int) -> None:
            log(f"  {name}: shard {done}/{total} ({n} examples)")
        return step

    log("one process, sharded (build_sharded, use_ray=False)")
    start = time.perf_counter()
    build_sharded(model_dir, [data], "sharded", index=args.index, batch_size=args.batch_size, shards=args.shards,
                  progress=progress("sharded"))
    times["sharded"] = {"wall": time.perf_counter() - start}
    log(f"  {times['sharded']}")

    log(f"Ray, {args.workers} workers on a local instance of {args.workers} CPUs (build_sharded, use_ray=True)")
    import ray

    start = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, log_to_driver=False)
    ready = time.perf_counter()
    try:
        build_sharded(model_dir, [data], "ray", index=args.index, batch_size=args.batch_size, shards=args.shards,
                      use_ray=True, workers=args.workers, progress=progress("ray"))
    finally:
        built = time.perf_counter()
        ray.shutdown()
    times["ray"] = {"wall": built - start, "ray.init": ready - start, "build": built - ready,
                    "ray.shutdown": time.perf_counter() - built}
    log(f"  {times['ray']}")

    memories = {name: Memory.load(memory_dir(model_dir, name), mmap=False) for name in times}
    agree = {f"{b} vs {a}": agreement(memories[a], memories[b])
             for a, b in (("classic", "sharded"), ("classic", "ray"), ("sharded", "ray"))}
    for pair, result in agree.items():
        log(f"{pair}: {result}")
    n = args.examples
    setting = f"{n:,} examples, index {memories['classic'].config.index}, {args.workers} Ray workers"
    names = {"classic": "one process (build_memory + save)", "sharded": "one process (build_sharded)",
             "ray": f"Ray ({args.workers} workers, build_sharded)"}
    rows = [row(DATASET, setting, names[k], "wall time (s)", [t["wall"]]) for k, t in times.items()]
    rows += [row(DATASET, setting, names[k], "examples/s", [n / t["wall"]]) for k, t in times.items()]
    rows.append(row(DATASET, setting, names["ray"], "ray.init (s)", [times["ray"]["ray.init"]]))
    for pair, result in agree.items():
        rows.append(row(DATASET, setting, pair, "keys max abs diff", [result["keys_max_abs_diff"]]))
        rows.append(row(DATASET, setting, pair, "values, labels, records equal (1 = yes)",
                        [float(result["values_equal"] and result["labels_equal"] and result["records_equal"])]))
    shards = args.shards or -(-n // PART_RECORDS)
    report = {
        "name": "memory_build", "command": command(),
        "data": f"{n:,} labelled relation examples: {distinct:,} distinct (FewRel 1.0 val_wiki + 2.0 val_pubmed, "
                f"Wiki80 cp_train_0.1 + typed val, SemEval-2010 train/dev/test), repeated in order; {len(labels)} "
                f"labels; {shards} shards",
        "encoder": f"{DEFAULT_ENCODER} (untrained RelationExtractor.new; batch size {args.batch_size}, CPU)",
        "seeds": [0], "machine": machine(),
        "reduced": "one run per build" + (f"; {n:,} examples instead of 100,000" if n < 100_000 else ""),
        "rows": rows, "times": times, "agreement": agree,
    }
    md = ["| build | wall (s) | examples/s | detail |", "|---|---|---|---|"]
    for k, t in times.items():
        detail = ", ".join(f"{x} {v:.1f} s" for x, v in t.items() if x != "wall")
        md.append(f"| {names[k]} | {t['wall']:.1f} | {n / t['wall']:.0f} | {detail} |")
    md += ["", "| pair | keys allclose | keys max abs diff | labels equal | values equal | records equal in order |",
           "|---|---|---|---|---|---|"]
    md += [f"| {pair} | {r['keys_allclose']} | {r['keys_max_abs_diff']:.3g} | {r['labels_equal']} | "
           f"{r['values_equal']} | {r['records_equal']} |" for pair, r in agree.items()]
    md += ["", f"Load average (1 min): {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at the end "
           f"({os.cpu_count()} cores; more than that means other processes shared them)."]
    write_results("memory_build", report, args.out_dir, md)
    return report


if __name__ == "__main__":
    main()
