"""Benchmark: `knnie serve` under load, on loopback only, bounded in time and count.

The relation model trained on the shipped sample (data/sample/fewrel8, as `make demo` trains it:
3 epochs, a memory of the 400 training examples, tuned on dev; cached under bench/.runs) is
served by `knnie serve` in a subprocess on 127.0.0.1 (a free port). Then:

1. reads: `--clients` concurrent clients (default 50) POST /relations, one test example each per
   request, for `--seconds` (default 60): throughput, latency p50/p99, errors (must be 0), and the
   mean batch the server's batcher formed (items per encoder call, from /health);
2. reads and writes: the same, with `--writers` of the clients (default 5) POSTing /memory/add
   instead (one training example per request, each writer its own source): throughput and latency
   of both, errors, and whether an addition was lost: the memory's size after must be its size
   before plus the examples added, as /health says and as the directory reloaded from disk says.

The load generator runs on the same 2 cores as the server (one torch thread by default). For
scale, `RelationExtractor.predict` on a batch of the size the server formed is timed in-process
with the same threads: the rate the encoder allows without HTTP.

Run: .venv/bin/python bench/service_load.py [--clients 50] [--seconds 60] [--writers 5] [--threads 1]
Writes bench/results/service_load.json and .md.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from common import RESULTS, RUNS, command, log, machine, row, write_results
from knnie import read_relations
from knnie.encoders import DEFAULT_ENCODER
from knnie.tasks.registry import load

SAMPLE = Path("data/sample/fewrel8")
MAX_REQUESTS = 1_000_000  # a bound on the requests of one phase, whatever the time


def knnie(*args: str, threads: int) -> tuple[list[str], dict[str, str]]:
    """The command line of a knnie command and its environment, with `threads` torch threads."""
    return [sys.executable, "-m", "knnie.cli.main", *args, "--device", "cpu"], {
        **os.environ, "OMP_NUM_THREADS": str(threads)}


def trained_model(runs: Path, threads: int) -> Path:
    """The sample's relation model (trained, memory 'train', tuned), made once under `runs`."""
    model = runs / "service_re"
    if (model / "knnie_config.json").exists() and (model / "memories" / "train").exists():
        log(f"reusing the trained model {model}")
        return model
    for step in (["train", "--train", f"{SAMPLE}/train.jsonl", "--dev", f"{SAMPLE}/dev.jsonl", "--out", str(model),
                  "--epochs", "3", "--lr", "1e-4", "--overwrite"],
                 ["memory", "build", str(model), "--data", f"{SAMPLE}/train.jsonl", "--name", "train"],
                 ["tune", str(model), "--dev", f"{SAMPLE}/dev.jsonl"]):
        cmd, env = knnie(*step, threads=threads)
        subprocess.run(cmd, env=env, check=True)
    return model


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: Path, port: int, threads: int, log_path: Path) -> subprocess.Popen:
    cmd, env = knnie("serve", f"re={model}", "--host", "127.0.0.1", "--port", str(port), "--threads", str(threads),
                     threads=threads)
    server = subprocess.Popen(cmd, env=env, stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}; see {log_path}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    server.terminate()
    raise RuntimeError(f"the server did not answer /health in 300 s; see {log_path}")


def item(example: Any, label: bool = False) -> dict[str, Any]:
    """A request item of a relation example (character spans into its text)."""
    row_ = example.to_row()
    out = {"text": row_["text"], "head": {k: row_["head"][k] for k in ("start", "end")},
           "tail": {k: row_["tail"][k] for k in ("start", "end")}}
    return {**out, "label": example.label} if label else out


async def run_phase(base: str, reads: list[dict], writes: list[dict], clients: int, writers: int,
                    seconds: float) -> dict[str, Any]:
    """`clients` concurrent loops for `seconds` (and at most MAX_REQUESTS requests): `writers` of them
    add to memory 'live', the others ask for relations. Latencies (s) and errors per kind."""
    deadline = time.monotonic() + seconds
    sent = itertools.count()
    out: dict[str, Any] = {"read": [], "write": [], "errors": [], "added": 0}
    next_read, next_write = itertools.cycle(reads), itertools.cycle(writes)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def loop(client: httpx.AsyncClient, writer: int | None) -> None:
        while time.monotonic() < deadline and next(sent) < MAX_REQUESTS:
            if writer is None:
                path, body = "/relations", {"items": [next(next_read)], "neighbours": 3}
            else:
                path, body = "/memory/add", {"model": "re", "source": f"load-w{writer}", "relations": [
                    next(next_write)]}
            start = time.perf_counter()
            try:
                response = await client.post(base + path, json=body)
                ok = response.status_code == 200
            except httpx.HTTPError as e:
                response, ok = e, False
            elapsed = time.perf_counter() - start
            if not ok:
                out["errors"].append(f"{path}: {getattr(response, 'text', response)}"[:300])
                continue
            out["write" if writer is not None else "read"].append(elapsed)
            if writer is not None:
                out["added"] += response.json()["added"]

    async with httpx.AsyncClient(timeout=120, limits=limits) as client:
        started = time.perf_counter()
        await asyncio.gather(*(loop(client, i if i < writers else None) for i in range(clients)))
        out["seconds"] = time.perf_counter() - started
    return out


def phase_rows(setting: str, result: dict[str, Any], batches: dict[str, int]) -> list[dict[str, Any]]:
    """Errors, then per kind of request throughput and latency p50/p99, then the mean batch."""
    measured = functools.partial(row, "fewrel8 sample", setting, "knnie serve")
    rows = [measured("errors", [len(result["errors"])])]
    for kind, what in (("read", "/relations"), ("write", "/memory/add")):
        latencies = np.array(result[kind])
        if len(latencies):
            rows += [measured(f"{what} requests/s", [len(latencies) / result["seconds"]]),
                     measured(f"{what} latency p50 ms", [1000 * float(np.percentile(latencies, 50))]),
                     measured(f"{what} latency p99 ms", [1000 * float(np.percentile(latencies, 99))])]
    if batches["calls"]:
        rows.append(measured("items per encoder call (mean)", [batches["items"] / batches["calls"]]))
    return rows


def predict_rate(extractor: Any, examples: list, threads: int, repeats: int = 5) -> list[float]:
    """Items per second of `predict` (3 neighbours) on these examples, `repeats` times, with `threads`
    torch threads: what the server's batches cost without HTTP."""
    torch.set_num_threads(threads)
    extractor.predict(examples, 3)  # warm up
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        extractor.predict(examples, 3)
        rates.append(len(examples) / (time.perf_counter() - start))
    return rates


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--writers", type=int, default=5, help="clients that add to the memory in the second phase")
    p.add_argument("--threads", type=int, default=1, help="torch threads of the server")
    p.add_argument("--runs-dir", type=Path, default=RUNS)
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    if not 0 < args.writers < args.clients:
        p.error("--writers must be between 1 and --clients - 1")
    model = args.runs_dir / "service_load" / "model"  # a fresh copy each run: the writes change it
    shutil.rmtree(model.parent, ignore_errors=True)
    shutil.copytree(trained_model(args.runs_dir, args.threads), model)
    reads_examples = read_relations(SAMPLE / "test.jsonl")
    reads = [item(ex) for ex in reads_examples]
    writes = [item(ex, label=True) for ex in read_relations(SAMPLE / "train.jsonl")]
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    load_before = os.getloadavg()
    server = start_server(model, port, args.threads, model.parent / "server.log")
    try:
        def health() -> dict[str, Any]:
            return httpx.get(f"{base}/health", timeout=30).json()["models"]["re"]

        log(f"phase 1: {args.clients} clients, /relations, {args.seconds:.0f} s")
        reading = asyncio.run(run_phase(base, reads, writes, args.clients, 0, args.seconds))
        after_reads = health()["batches"]
        before = health()["memories"].get("live", {"size": 0})["size"]
        log(f"phase 2: {args.clients - args.writers} reading and {args.writers} writing clients, {args.seconds:.0f} s")
        mixed = asyncio.run(run_phase(base, reads, writes, args.clients, args.writers, args.seconds))
        served = health()
        batches = {k: served["batches"][k] - after_reads[k] for k in ("calls", "items")}
    finally:
        server.terminate()
        server.wait(60)
    after = served["memories"]["live"]["size"]
    extractor = load(model, device="cpu")
    reloaded = len(extractor.memories["live"])
    lost = {"memory_size_before": before, "added": mixed["added"], "size_after_health": after,
            "size_after_reload": reloaded, "lost": before + mixed["added"] - reloaded}
    log(f"additions: {lost}")
    rows = phase_rows(f"{args.clients} clients, /relations, {args.seconds:.0f} s", reading, after_reads)
    rows += phase_rows(f"{args.clients - args.writers} reading + {args.writers} writing clients, {args.seconds:.0f} s",
                       mixed, batches)
    rows.append(row("fewrel8 sample", "writes", "knnie serve", "additions lost (before + added - after reload)",
                    [lost["lost"]]))
    size = round(after_reads["items"] / max(after_reads["calls"], 1))
    rate = predict_rate(extractor, reads_examples[:size], args.threads)
    rows.append(row("fewrel8 sample", f"the same model in-process, batches of {size}", "RelationExtractor.predict",
                    "items/s (no HTTP: the encoder's bound)", rate))
    report = {
        "command": command(), "data": f"{SAMPLE} (requests: test.jsonl; additions: train.jsonl)",
        "encoder": DEFAULT_ENCODER, "seeds": "n/a (a load test)", "machine": machine(),
        "reduced": f"the model is the sample's (400 training examples, 3 epochs); the load generator shares the "
                   f"machine with the server; server torch threads: {args.threads}",
        "model": str(model), "additions": lost,
        "load_average": {"before": load_before, "after": os.getloadavg(),
                         "note": "1/5/15-minute load of the machine (other work shares its 2 cores)"},
        "errors": {"reads": reading["errors"][:20], "mixed": mixed["errors"][:20]},
        "rows": rows,
    }
    extra = [f"Additions: {lost['added']} examples added by {args.writers} writers; memory 'live' held "
             f"{before} before, {after} after (/health), {reloaded} after reloading the directory: "
             f"{lost['lost']} lost.",
             "", f"Machine load average (1, 5, 15 min) before: {', '.join(f'{x:.1f}' for x in load_before)}; after: "
             f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (2 cores, shared with other work)."]
    write_results("service_load", report, args.out_dir, extra)
    if reading["errors"] or mixed["errors"] or lost["lost"] or after != reloaded:
        log("FAILED: errors or lost additions (see the report)")
        sys.exit(1)
    return report


if __name__ == "__main__":
    main()
