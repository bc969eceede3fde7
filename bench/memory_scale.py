"""Benchmark: memory build time, size and query latency at 10k, 100k and 1M keys on this
machine, exact (flat) vs IVF (float32 or fp16 keys) vs HNSW, with recall@k of the approximate
indexes against exact.

Keys: real relation vectors (the default encoder with entity markers, not fine-tuned, over
SemEval-2010 sentences; dim 768 = 2 × 384), repeated with Gaussian noise to reach N keys. The
noise has a per-dimension std of `--noise` × the median nearest-neighbour distance / √dim,
so copies of one vector are not trivially identical. Queries: vectors of held-out sentences
(the SemEval test file) with the same noise. Latency: queries are sent in batches of
`--batch`; per-query latency = batch time / batch size; p50/p99 over batches.

Sizes beyond RAM (`--streaming-sizes 10000000`) take the streaming path (`streaming` below): keys
generated chunk by chunk with a seeded RNG and written as fp16 by `write_memory` under `--work-dir`,
never all in RAM; IVF-PQ (code sizes `--code-sizes`, re-ranked or not) and IVF-fp16 built from the
written keys (`reindex`: keys and records hard-linked, on disk once); query latency batched and
single; recall@k against exact (brute force over the mapped keys) on the batched queries; RAM after
load measured in a fresh process (VmRSS after `Memory.load` minus before, then after the queries).

Run: .venv/bin/python bench/memory_scale.py [--sizes 10000 100000 1000000] [--streaming-sizes 10000000]
Writes bench/results/memory_scale.json and .md (in-RAM sizes; run when --sizes are given or no
--streaming-sizes), memory_scale_10m.json and .md (streaming sizes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from common import RESULTS, command, log, machine, row, write_results
from knnie import Memory, RelationExtractor, read_relations
from knnie.encoders import DEFAULT_ENCODER
from knnie.memory.memory import MemoryConfig, reindex, write_memory

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
    p.add_argument("--sizes", type=int, nargs="*", default=None,
                   help="in-RAM sizes (default 10000 100000 1000000, none when --streaming-sizes are given)")
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--noise", type=float, default=0.5)
    p.add_argument("--nprobe", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--ef-search", type=int, nargs="+", default=[64, 128])
    p.add_argument("--limit", type=int, default=None, help="sentences per SemEval split (smoke tests)")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    p.add_argument("--streaming-sizes", type=int, nargs="*", default=[], help="sizes built by streaming to disk")
    p.add_argument("--work-dir", type=Path, default=Path("/work/runs/memory_scale"),
                   help="streamed memories go here (a finished memory is reused on a rerun)")
    p.add_argument("--code-sizes", type=int, nargs="+", default=[32, 64], help="IVF-PQ bytes per key")
    p.add_argument("--rerank", type=int, nargs="+", default=[64, 1024],
                   help="IVF-PQ candidates re-ranked by exact distance (0, none, is always tried too)")
    p.add_argument("--stream-batches", type=int, default=10, help="batches of --batch queries (streaming sizes)")
    p.add_argument("--singles", type=int, default=200, help="queries sent one at a time (streaming sizes)")
    p.add_argument("--keys", choices=("copies", "segments"), default="copies",
                   help="streamed keys: noisy copies of the base vectors, or points between two of them (`key_chunks`)")
    p.add_argument("--keep", action="store_true", help="keep the streamed memories (default: deleted at the end)")
    p.add_argument("--probe", nargs=3, metavar=("MEMORY", "MMAP", "QUERIES"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe:
        return probe(*args.probe)
    if args.sizes is None:
        args.sizes = [] if args.streaming_sizes else [10_000, 100_000, 1_000_000]
    load_start = os.getloadavg()[0]
    rng = np.random.default_rng(0)
    base, base_q = base_vectors(args.limit)
    d_nn = Memory(base, np.zeros(len(base)), [{}] * len(base), ["x"], "-").search(base_q[:500], 1)[0][:, 0]
    sigma = args.noise * float(np.sqrt(np.median(d_nn))) / np.sqrt(base.shape[1])  # d_nn is squared L2
    report = {}
    if args.streaming_sizes:
        report = streaming(args, base, base_q, sigma, load_start)
    if not args.sizes:
        return report
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


# -- sizes beyond RAM: streamed to disk ------------------------------------------------------------
STREAM_CHUNK = 131_072  # keys generated and written at a time


def key_chunks(base: np.ndarray, n: int, sigma: float, seed: int, timer: dict[str, float], keys: str = "copies"):
    """n keys as fp16 chunks, generated one at a time with a seeded RNG: `copies`, `grow(base, n, ...)`
    (at 10M, 1,250 noisy copies of each base vector, which only their noise tells apart); `segments`,
    points on the segments between two random base vectors, (1 − t)·a + t·b with t uniform, plus the
    same noise: keys among real vectors without near-duplicates."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, STREAM_CHUNK):
        t = time.perf_counter()
        size = min(n, start + STREAM_CHUNK) - start
        if keys == "copies":
            chunk = base[np.arange(start, start + size) % len(base)]
        else:
            w = rng.random((size, 1), dtype=np.float32)
            chunk = (1 - w) * base[rng.integers(len(base), size=size)] + w * base[rng.integers(len(base), size=size)]
        chunk = chunk + sigma * rng.standard_normal((size, base.shape[1]), dtype=np.float32)
        timer["generate"] += time.perf_counter() - t
        if start // STREAM_CHUNK % 16 == 0:
            log(f"  writing keys {start:,}/{n:,}")
        yield chunk.astype(np.float16)


def vm_status() -> dict[str, int]:
    """This process's VmRSS, RssAnon and RssFile in bytes."""
    fields = ("VmRSS", "RssAnon", "RssFile")
    lines = Path("/proc/self/status").read_text().splitlines()
    return {x.split(":")[0]: int(x.split()[1]) * 1024 for x in lines if x.split(":")[0] in fields}


def probe(path: str, mmap: str, queries_file: str) -> dict[str, Any]:
    """(Run in a fresh process.) RSS growth from loading the memory at `path` and from searching
    `queries_file`'s queries in batches of 64; a refused load is reported, not raised."""
    import faiss  # noqa: F401 -- imported before the baseline, as Memory.load imports it

    queries = np.load(queries_file)
    before = vm_status()
    out: dict[str, Any] = {"mmap": mmap == "1"}
    try:
        start = time.perf_counter()
        memory = Memory.load(path, mmap=mmap == "1")
        out["load_seconds"] = time.perf_counter() - start
    except Exception as e:  # the refusal is the result
        out["refused"] = f"{type(e).__name__}: {e}"
        print(json.dumps(out))
        return out
    loaded = vm_status()
    for b in range(0, len(queries), 64):
        memory.search(queries[b : b + 64], 16)
    searched = vm_status()
    out |= {f"load_{k}": loaded[k] - before[k] for k in loaded} | {f"search_{k}": searched[k] - before[k]
                                                                  for k in searched}
    print(json.dumps(out))
    return out


def ram_after_load(path: Path, mmap: bool, queries_file: Path) -> dict[str, Any]:
    result = subprocess.run([sys.executable, __file__, "--probe", str(path), "1" if mmap else "0", str(queries_file)],
                            capture_output=True, text=True, env=os.environ | {"PYTHONPATH": os.getcwd()})
    if result.returncode:
        return {"mmap": mmap, "refused": f"probe failed ({result.returncode}): {result.stderr[-500:]}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def timed_searches(memory: Memory, queries: np.ndarray, k: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-query ms of each call of `batch` queries, and the ids found."""
    times, ids = [], []
    for b in range(0, len(queries), batch):
        q = queries[b : b + batch]
        start = time.perf_counter()
        _, found = memory.search(q, k)
        times.append(1000 * (time.perf_counter() - start) / len(q))
        ids.append(found)
    return np.array(times), np.concatenate(ids)


def build_streamed(args: argparse.Namespace, n: int, base: np.ndarray, sigma: float, root: Path
                   ) -> list[tuple[str, Path, dict[str, float]]]:
    """The memories of one size (IVF-PQ per code size, IVF-fp16), built once: the first by
    `write_memory` from generated keys, the others by `reindex`. A memory already there (and its
    times in builds.json) is reused."""
    times_file = root / "builds.json"
    times = json.loads(times_file.read_text()) if times_file.exists() else {}
    first = f"ivfpq{args.code_sizes[0]}"
    todo = [(f"ivfpq{c}", "ivfpq", c) for c in args.code_sizes] + [("ivf_fp16", "ivf", None)]
    for name, kind, code in todo:
        target = root / name
        if (target / "memory.json").exists() and name in times:
            log(f"{n:,}: reusing {target}")
            continue
        log(f"{n:,}: building {name} ({'write_memory' if name == first else 'reindex'})")
        start, timer = time.perf_counter(), {"generate": 0.0}
        if name == first:
            config = MemoryConfig(["x"], "bench", sources=["bench"], index=kind, fp16=True, dim=base.shape[1], size=n,
                                  code_size=code)
            write_memory(target, config, key_chunks(base, n, sigma, 0, timer, args.keys), np.zeros(n, np.int64),
                         (b"{}\n" for _ in range(n)))
        else:
            reindex(root / first, target, kind, code)
        times[name] = {"build_seconds": time.perf_counter() - start, "generate_seconds": timer["generate"],
                       "how": "write_memory" if name == first else f"reindex of {first}"}
        times_file.write_text(json.dumps(times, indent=2))
        log(f"{n:,}: {name} built in {times[name]['build_seconds']:.0f} s")
    return [(name, root / name, times[name]) for name, _, _ in todo]


def streaming(args: argparse.Namespace, base: np.ndarray, base_q: np.ndarray, sigma: float,
              load_start: float) -> dict[str, Any]:
    k, rng = args.k, np.random.default_rng(1)
    queries = grow(base_q, args.batch * args.stream_batches, sigma, rng)
    rows, details, ram, builds = [], [], [], {}
    for n in args.streaming_sizes:
        root = args.work_dir / (str(n) if args.keys == "copies" else f"{n}_{args.keys}")
        root.mkdir(parents=True, exist_ok=True)
        np.save(root / "queries.npy", queries)
        setting = f"{n:,} keys × {base.shape[1]} (streamed, fp16 keys)"
        memories = build_streamed(args, n, base, sigma, root)
        keys_mb = sum((root / memories[0][0] / f).stat().st_size for f in ("keys.safetensors", "records.jsonl")) / 2**20
        exact_file = root / f"exact_{len(queries)}_{k}.npy"
        if not exact_file.exists():
            log(f"{n:,}: exact neighbours of {len(queries)} queries (brute force)")
            start = time.perf_counter()
            np.save(exact_file, Memory.load(memories[0][1], mmap=True).search(queries, k, exact=True)[1])
            log(f"{n:,}: exact search took {time.perf_counter() - start:.0f} s")
        exact = np.load(exact_file)
        for name, path, built in memories:
            index_mb = (path / "index.faiss").stat().st_size / 2**20
            label = name.replace("ivfpq", "ivfpq-").replace("ivf_fp16", "ivf fp16")
            builds[f"{n:,} {label}"] = built
            rows += [row(SOURCE, setting, label, "build time (s)", [built["build_seconds"]]),
                     row(SOURCE, setting, label, "index on disk (MB)", [index_mb])]
            for mmap in (True, False) if name == "ivf_fp16" else (True,):
                r = ram_after_load(path, mmap, root / "queries.npy") | {"index": label}
                ram.append(r)
                log(f"{n:,}: RAM {r}")
                if "refused" not in r:
                    how = "mmap" if mmap else "in RAM"
                    rows += [row(SOURCE, setting, label, f"RSS after load, {how} (MB)", [r["load_VmRSS"] / 2**20]),
                             row(SOURCE, setting, label, f"RSS after {len(queries)} queries, {how} (MB)",
                                 [r["search_VmRSS"] / 2**20])]
            memory = Memory.load(path, mmap=True)
            reranks = (*args.rerank, 0) if name.startswith("ivfpq") else (None,)
            for rerank in reranks:
                for nprobe in args.nprobe:
                    memory.set_search(nprobe=nprobe, rerank=rerank)
                    method = label + ("" if rerank is None else f" rerank={rerank}") + f" nprobe={nprobe}"
                    timed_searches(memory, queries[: args.batch], k, args.batch)  # warm-up
                    batched, found = timed_searches(memory, queries, k, args.batch)
                    single, _ = timed_searches(memory, queries[: args.singles], k, 1)
                    rec = recall(found, exact)
                    d = {"keys": n, "index": method, "build_seconds": built["build_seconds"],
                         "index_mb": index_mb, "keys_records_mb": keys_mb, f"recall@{k}": rec,
                         "batched_p50_ms": float(np.percentile(batched, 50)),
                         "batched_p99_ms": float(np.percentile(batched, 99)),
                         "single_p50_ms": float(np.percentile(single, 50)),
                         "single_p99_ms": float(np.percentile(single, 99))}
                    details.append(d)
                    log(str(d))
                    rows += [row(SOURCE, setting, method, f"batched query p50 (ms/query, batch {args.batch})",
                                 [d["batched_p50_ms"]]),
                             row(SOURCE, setting, method, f"batched query p99 (ms/query, batch {args.batch})",
                                 [d["batched_p99_ms"]]),
                             row(SOURCE, setting, method, "single query p50 (ms)", [d["single_p50_ms"]]),
                             row(SOURCE, setting, method, "single query p99 (ms)", [d["single_p99_ms"]]),
                             row(SOURCE, setting, method, f"recall@{k}", [rec])]
            del memory
        rows.append(row(SOURCE, setting, "keys + records (shared)", "on disk (MB)", [keys_mb]))
        if not args.keep:
            shutil.rmtree(root)
            log(f"deleted {root}")
    goal = [d["index"] for d in details if d["batched_p50_ms"] <= 2 and d[f"recall@{k}"] >= 0.95]
    name = "memory_scale_10m" + ("" if args.keys == "copies" else f"_{args.keys}")
    report = {
        "name": name, "command": command(),
        "data": (f"keys: {len(base)} SemEval train+dev relation vectors repeated with noise (σ = {sigma:.4g}/dim), "
                 if args.keys == "copies" else
                 f"keys: points (1 − t)·a + t·b, t ~ U(0, 1), between two random of {len(base)} SemEval train+dev "
                 f"relation vectors, plus noise (σ = {sigma:.4g}/dim), ")
                +
                f"generated {STREAM_CHUNK:,} at a time (seed 0) and stored as fp16; queries: {len(queries)} noisy "
                f"SemEval test vectors (seed 1)",
        "encoder": f"{DEFAULT_ENCODER} (not fine-tuned; vectors only)", "seeds": [0], "machine": machine(),
        "builds": builds,
        "reduced": f"{args.stream_batches} batches of {args.batch} queries per setting (recall@{k} on these "
                   f"{len(queries)} against brute force), {args.singles} single queries; one build per index; "
                   "RAM without mmap tried for IVF-fp16 only (the IVF-PQ memories' 15 GB of keys would fill "
                   "this machine's RAM shared with other work)",
        "rows": rows, "details": details, "ram": ram, "goal_p50_le_2ms_recall16_ge_095": goal,
    }
    md = ["| keys | index | build (s) | index MB | recall@k | batched p50 | batched p99 | single p50 | single p99 |",
          "|---|---|---|---|---|---|---|---|---|"]
    for d in details:
        md.append(f"| {d['keys']:,} | {d['index']} | {d['build_seconds']:.0f} | {d['index_mb']:.0f} | "
                  f"{d[f'recall@{k}']:.3f} | {d['batched_p50_ms']:.3f} | {d['batched_p99_ms']:.3f} | "
                  f"{d['single_p50_ms']:.3f} | {d['single_p99_ms']:.3f} |")
    md += ["", "Latencies in ms per query. Keys + records, shared by all indexes (hard links): "
           f"{keys_mb:,.0f} MB. Builds: " + "; ".join(
               f"{name}: {b['build_seconds']:.0f} s ({b['how']}; generating the keys {b['generate_seconds']:.0f} s)"
               for name, b in builds.items()),
           "", f"RAM: a fresh process per row; RSS growth over the process before `Memory.load`, then after the "
           f"{len(queries)} queries in batches of 64 at the memory's saved settings (nprobe 16, rerank 64); file "
           "pages (mapped keys and IVF lists, counted once touched, readahead included) are page cache the kernel "
           "can take back, the rest is anonymous memory.", "",
           "| index | mmap | load (s) | RSS after load (MB) | RSS after queries (MB) | of which file pages (MB) |",
           "|---|---|---|---|---|---|"]
    for r in ram:
        if "refused" in r:
            md.append(f"| {r['index']} | {r['mmap']} | refused: {r['refused'][:200]} | | | |")
        else:
            md.append(f"| {r['index']} | {r['mmap']} | {r['load_seconds']:.1f} | {r['load_VmRSS'] / 2**20:.0f} | "
                      f"{r['search_VmRSS'] / 2**20:.0f} | {r['search_RssFile'] / 2**20:.0f} |")
    md += ["", f"Load average (1 min): {load_start:.1f} at start, {os.getloadavg()[0]:.1f} at the end "
           f"({os.cpu_count()} cores).", "",
           f"Goal (batched p50 ≤ 2 ms/query at recall@{k} ≥ 0.95) met by: {', '.join(goal) or 'none'}"]
    write_results(name, report, args.out_dir, md)
    return report


if __name__ == "__main__":
    main()
