"""What every benchmark shares: the machine, result rows, and the JSON + Markdown writer.

Every results file has "command", "data", "encoder", "seeds", "machine", "reduced" and
"rows" of {"dataset", "setting", "method", "metric", "mean", "std", "n"}.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from knnie.io import atomic_path, write_json

RESULTS = Path("bench/results")
RUNS = Path("bench/.runs")  # finished runs, so an interrupted benchmark resumes where it stopped


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    import torch

    gpu = f"GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} CPU cores ({model}), {gpu}; {platform.system()} {platform.release()}, " \
           f"Python {platform.python_version()}"


def command() -> str:
    return shlex.join(sys.orig_argv)


def row(dataset: str, setting: str, method: str, metric: str, values: list[float], **extra: Any) -> dict[str, Any]:
    """One result row: mean and population std over `values` (one per seed or repeat)."""
    return {"dataset": dataset, "setting": setting, "method": method, "metric": metric,
            "mean": float(np.mean(values)), "std": float(np.std(values)), "n": len(values), **extra}


def rows_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| dataset | setting | method | metric | mean | std | n | published |",
             "|---|---|---|---|---|---|---|---|"]
    for x in rows:
        lines.append(f"| {x['dataset']} | {x['setting']} | {x['method']} | {x['metric']} | {x['mean']:.4g} | "
                     f"{x['std']:.3g} | {x['n']} | {x.get('published', '')} |")
    return lines


def add_runs_arguments(parser: argparse.ArgumentParser) -> None:
    """--runs-dir / --no-reuse: where finished runs are kept for `cached`."""
    parser.add_argument("--runs-dir", type=Path, default=RUNS,
                        help="finished runs are kept here and reused (resume; split seeds or settings over "
                             "processes); the key is the run's configuration, not the code: empty it after a change")
    parser.add_argument("--no-reuse", dest="runs_dir", action="store_const", const=None,
                        help="run everything afresh")


def cached(runs_dir: Path | None, key: dict[str, Any], compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """`compute()`, or its saved result for the same `key` (everything that defines the run).

    Each finished run is written atomically to runs_dir/<hash of key>.json; a rerun with the
    same key reads it back instead of training again. Parallel processes may share runs_dir.
    The key does not cover the code: after changing what a run computes, empty runs_dir.
    The result gains "seconds" (the compute time, None if unknown) and "reused" (read back).
    """
    path = None
    if runs_dir is not None:
        blob = json.dumps(key, sort_keys=True, default=str)
        path = runs_dir / f"{hashlib.sha1(blob.encode()).hexdigest()[:16]}.json"
        if path.exists():
            log(f"  reusing the finished run {path}")
            saved = json.loads(path.read_text(encoding="utf-8"))
            return saved["result"] | {"seconds": saved.get("seconds"), "reused": True}
    start = time.perf_counter()
    result = json.loads(json.dumps(compute(), default=float))
    seconds = round(time.perf_counter() - start, 1)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json(path, {"key": key, "result": result, "seconds": seconds})
    return result | {"seconds": seconds, "reused": False}


def write_results(name: str, report: dict[str, Any], out_dir: Path = RESULTS, extra_md: list[str] = ()) -> None:
    """bench/results/<name>.json and a short <name>.md: the setup, then the rows."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / f"{name}.json", report)
    setup = [(k, report[k]) for k in ("command", "data", "encoder", "seeds", "machine", "reduced") if k in report]
    lines = [f"# {name}", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)} |" for k, v in setup]
    lines += ["", *rows_table(report["rows"]), "", *extra_md]
    with atomic_path(out_dir / f"{name}.md") as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log(f"wrote {out_dir / name}.json and .md")
