"""Benchmark: memory build time, size and query latency at 10k, 100k and 1M keys on this
machine, exact (flat) vs IVF (float32 or fp16 keys) vs HNSW, with recall@k of the approximate
indexes against exact.

Keys: real relation vectors (the default encoder with entity markers, not fine-tuned, over
SemEval-2010 sentences; dim 768 = 2 × 384), repeated with Gaussian noise to reach N keys. The
noise has a per-dimension std of `--noise` × the median nearest-neighbour distance / √dim,
so copies of one vector are not trivially identical. Queries: vectors of held-out sentences
(the SemEval test file) with the same noise. Latency: queries are sent in batches of
`--batch`; per-query latency = batch time / batch size; p50/p99 over batches.

Run: .venv/bin/python bench/memory_scale.py [--sizes 10000 100000 1000000]
Writes bench/results/memory_scale.json and .md.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import RESULTS, command, log, machine, row, write_results
from knnie import Memory, RelationExtractor, read_relations
from knnie.encoders import DEFAULT_ENCODER

DATA = Path("../shared/data/semeval2010/opennre")
SOURCE = "synthetic from SemEval relation vectors"  # the dataset column of every row


def base_vectors(limit: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Relation vectors of SemEval train+dev (keys) and test (queries) from the default encoder."""
    sets = [read_relations(DATA / f) for f in ("train.txt", "dev.txt", "test.txt")]
    if limit:
        sets = [s[:limit] for s in sets]
    extractor = RelationExtractor.new(sorted({ex.label for s in sets for ex in s}))
    keys, _ = extractor.encode(sets[0] + sets[1], batch_size=128)
    queries, _ = extractor.encode(sets[2], batch_size=128)
    return keys, queries


def grow(base: np.ndarray, n: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    keys = base[np.arange(n) % len(base)].copy()
    keys += rng.normal(0.0, sigma, keys.shape).astype(np.float32)
    return keys


def directory_bytes(memory: Memory) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        memory.save(Path(tmp) / "m")
        return sum(f.stat().st_size for f in (Path(tmp) / "m").iterdir())


def latencies(memory: Memory, queries: np.ndarray, k: int, batch: int, batches: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-query milliseconds of each batch, and the ids of all answered queries."""
    times, ids = [], []
    for b in range(batches):
        q = queries[b * batch : (b + 1) * batch]
        start = time.perf_counter()
        _, found = memory.search(q, k)
        times.append(1000 * (time.perf_counter() - start) / len(q))
        ids.append(found)
    return np.array(times), np.concatenate(ids)


def recall(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / len(e) for f, e in zip(found, exact)]))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--noise", type=float, default=0.5)
    p.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--ef-search", type=int, nargs="+", default=[64, 128])
    p.add_argument("--limit", type=int, default=None, help="sentences per SemEval split (smoke tests)")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    load_start = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    base, base_q = base_vectors(args.limit)
    d_nn = Memory(base, np.zeros(len(base)), [{}] * len(base), ["x"], "-").search(base_q[:500], 1)[0][:, 0]
    sigma = args.noise * float(np.sqrt(np.median(d_nn))) / np.sqrt(base.shape[1])  # d_nn is squared L2
    queries = grow(base_q, args.batch * args.batches, sigma, rng)
    rows, details = [], []
    for n in args.sizes:
        keys = grow(base, n, sigma, rng)
        values = np.zeros(n, dtype=np.int64)
        setting = f"{n:,} keys × {keys.shape[1]}"
        exact_ids = None
        for kind, fp16 in (("flat", False), ("ivf", False), ("ivf", True), ("hnsw", False)):
            label = kind + (" fp16" if fp16 else "")
            memory = Memory(keys, values, [{}] * n, ["x"], "bench", index=kind, fp16=fp16)
            start = time.perf_counter()
            memory.index  # noqa: B018 -- builds (and for IVF trains) the index
            build = time.perf_counter() - start
            size_mb = directory_bytes(memory) / 2**20 if n <= 100_000 else None
            knobs = {"flat": [None], "ivf": args.nprobe, "hnsw": args.ef_search}[kind]
            for knob in knobs:
                memory.set_search(**({"nprobe": knob} if kind == "ivf" else {"ef_search": knob} if knob else {}))
                ms, found = latencies(memory, queries, args.k, args.batch, args.batches)
                if kind == "flat":
                    exact_ids = found
                rec = recall(found, exact_ids)
                p50, p99 = float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
                name = label + ({"ivf": f" nprobe={knob}", "hnsw": f" efSearch={knob}"}.get(kind, "") if knob else "")
                rows += [row(SOURCE, setting, name, "query p50 (ms/query)", [p50]),
                         row(SOURCE, setting, name, "query p99 (ms/query)", [p99]),
                         row(SOURCE, setting, name, f"recall@{args.k}", [rec])]
                details.append({"keys": n, "index": name, "build_seconds": build, "saved_mb": size_mb,
                                "p50_ms": p50, "p99_ms": p99, f"recall@{args.k}": rec})
                log(str(details[-1]))
            rows.append(row(SOURCE, setting, label, "build time (s)", [build]))
            del memory
    goal = [d for d in details if d["keys"] == 1_000_000 and d["p50_ms"] <= 2 and d[f"recall@{args.k}"] >= 0.95]
    report = {
        "name": "memory_scale", "command": command(),
        "data": f"keys: {len(base)} SemEval train+dev relation vectors repeated with noise (σ = {sigma:.4g}/dim); "
                f"queries: {len(queries)} noisy SemEval test vectors",
        "encoder": f"{DEFAULT_ENCODER} (not fine-tuned; vectors only)", "seeds": [0], "machine": machine(),
        "reduced": f"{args.batches} batches of {args.batch} queries per index; saved size measured up to 100k keys",
        "rows": rows, "details": details,
        "goal_1m_p50_le_2ms_recall16_ge_095": [d["index"] for d in goal],
    }
    md = ["| keys | index | build (s) | saved (MB) | p50 ms/query | p99 ms/query | recall@k |",
          "|---|---|---|---|---|---|---|"]
    for d in details:
        saved = "" if d["saved_mb"] is None else f"{d['saved_mb']:.0f}"
        md.append(f"| {d['keys']:,} | {d['index']} | {d['build_seconds']:.1f} | {saved} | {d['p50_ms']:.3f} | "
                  f"{d['p99_ms']:.3f} | {d[f'recall@{args.k}']:.3f} |")
    md += ["", f"Load average (1 min): {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at the end "
           f"(this bench keeps all {os.cpu_count()} cores busy; more than that means other processes shared them).",
           "", f"Goal (1M keys: p50 ≤ 2 ms/query at recall@{args.k} ≥ 0.95) met by: "
           f"{', '.join(report['goal_1m_p50_le_2ms_recall16_ge_095']) or 'none'}"]
    write_results("memory_scale", report, args.out_dir, md)
    return report


if __name__ == "__main__":
    main()
