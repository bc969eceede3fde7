"""Memories too large for one process's RAM, built shard by shard.

A sharded build has two stages:

1. encode: the data files are cut into parts (`split_file`); each part is read and encoded by a
   worker holding one copy of the model, and written as a key shard (its keys, label names and
   records). Workers are Ray Data actors (`map_batches`) on a local Ray instance or a cluster, or
   this process alone. Shards are written atomically into a work directory beside the memory, so
   a build that dies keeps the shards it finished and a rerun resumes after them.
2. assemble (`assemble`): the shards, in data order, are streamed into one memory directory:
   keys, values and records written chunk by chunk, then the index trained on a sample of the keys
   and filled shard by shard. No process holds all keys at once. The memory replaces the old one in
   one rename at the end, so an interrupted build leaves the previous memory intact.

The result is the memory a one-process `build_memory` gives on the same data: the same keys (up to
float rounding, as batches are cut differently), values and labels, and the same records in the
same order.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knnie.data.files import FilePart, record_starts, split_file
from knnie.errors import DataError, KnnieError
from knnie.io import atomic_dir, mmap_safetensors, read_json, verify_files, write_json
from knnie.memory.memory import CHUNK, MemoryConfig, auto_index, check_code_size, write_memory, write_store

log = logging.getLogger(__name__)
PART_RECORDS = 10_000  # examples per part (one shard each) unless a number of shards is asked for
SHARD_FILES = ("keys.safetensors", "records.jsonl")


@dataclass(frozen=True)
class BuildConfig:
    """How a memory is built; saved as build.json in the work directory, so that a rerun resumes
    only a build of the same data and model."""

    model_dir: str
    data: list[str]
    fingerprint: str
    per_part: int
    index: str = "auto"
    fp16: bool = False
    code_size: int = 32
    rerank: int = 64
    batch_size: int = 64
    source: str = "default"


# -- shards -----------------------------------------------------------------------------------
def write_shard(root: Path, keys: np.ndarray, labels: Sequence[str], records: Sequence[dict[str, Any]]) -> None:
    """One key shard, atomically: keys (float32) and label ids, records one per line, and shard.json
    (label names, size, checksums) naming what a reader verifies."""
    names = sorted(set(labels))
    ids = {label: i for i, label in enumerate(names)}
    with atomic_dir(root) as tmp:
        lines = ((json.dumps(r, ensure_ascii=False) + "\n").encode() for r in records)
        checksums = write_store(tmp, [np.asarray(keys, np.float32)], np.dtype(np.float32),
                                np.array([ids[label] for label in labels], np.int64),
                                np.zeros(len(labels), np.int32), lines)
        write_json(tmp / "shard.json", {"labels": names, "size": len(labels), "checksums": checksums})


def read_shard(root: Path) -> dict[str, Any]:
    """shard.json of a finished shard, its files verified: a truncated or damaged shard is a
    DataError naming the file (a rerun of the build encodes that part again)."""
    info = read_json(root / "shard.json", "shard description")
    verify_files(root, info["checksums"], "rerun the build: it encodes this shard again")
    return info


def _shard_ok(root: Path) -> bool:
    try:
        read_shard(root)
    except (DataError, KeyError, TypeError):
        return False
    return True


# -- stage 2: shards → memory -------------------------------------------------------------------
def assemble(target: Path, shards: Sequence[Path], fingerprint: str, index: str = "auto", fp16: bool = False,
             metric: str = "l2", code_size: int = 32, rerank: int = 64, source: str = "default") -> MemoryConfig:
    """Write the memory of `shards` (in this order) into the directory `target`, atomically, holding
    one chunk of keys at a time; returns its config. Labels are joined by name, sorted, as
    `Memory.from_labels` orders them."""
    infos = [read_shard(s) for s in shards]
    if not infos or not sum(i["size"] for i in infos):
        raise KnnieError("cannot build an empty memory: the data gave no examples")
    labels = sorted({label for info in infos for label in info["labels"]})
    n = sum(i["size"] for i in infos)
    dim = mmap_safetensors(shards[0] / "keys.safetensors", ("keys",))["keys"].shape[1]
    config = MemoryConfig(labels=labels, fingerprint=fingerprint, metric=metric, sources=[source],
                          index=auto_index(n) if index == "auto" else index, fp16=fp16, dim=dim, size=n,
                          code_size=code_size, rerank=rerank)
    if config.index == "ivfpq":
        check_code_size(code_size, dim)
    values = np.empty(n, np.int64)

    def keys() -> Iterator[np.ndarray]:
        done = 0
        for shard, info in zip(shards, infos):
            arrays = mmap_safetensors(shard / "keys.safetensors", ("keys", "values"))
            ids = np.array([labels.index(label) for label in info["labels"]], np.int64)
            values[done : done + info["size"]] = ids[arrays["values"]]
            for start in range(0, info["size"], CHUNK):
                chunk = np.asarray(arrays["keys"][start : start + CHUNK], np.float32)
                if metric == "cosine":
                    chunk = chunk / np.maximum(np.linalg.norm(chunk, axis=1, keepdims=True), 1e-12)
                yield chunk.astype(np.float16 if fp16 else np.float32)
            done += info["size"]

    def lines() -> Iterator[bytes]:
        for shard in shards:
            with open(shard / "records.jsonl", "rb") as f:
                yield from f

    write_memory(target, config, keys(), values, lines())
    return config


# -- stage 1: data → shards ---------------------------------------------------------------------
def plan(files: Sequence[Path], per_part: int, blocks: bool) -> list[FilePart]:
    """The parts the build encodes, one shard each: JSON lines files (and, with `blocks`, CoNLL
    files) are cut every `per_part` records; other files (a FewRel or DyGIE .json) are one part."""
    parts = []
    for f in files:
        if f.suffix == ".jsonl" or (blocks and f.suffix != ".json"):
            parts += split_file(f, per_part, blocks=blocks and f.suffix != ".jsonl")
        else:
            parts.append(FilePart(str(f), 0, f.stat().st_size))
    return parts


class ShardEncoder:
    """A worker that encodes parts into shards with a loaded model (each Ray Data actor loads its
    own copy, `shard_encoder`; a one-process build uses the model the build already loaded)."""

    def __init__(self, front: Any, work: str | Path, batch_size: int) -> None:
        self.front, self.work, self.batch_size = front, Path(work), batch_size

    def __call__(self, item: dict[str, Any]) -> list[dict[str, int]]:
        """Part `item` ({shard, path, start, stop, first_line}) read, encoded and written as its shard."""
        shard = item.pop("shard")
        examples = self.front.read_examples(FilePart(**item))
        keys, labels, records = self.front.memory_entries(examples, self.batch_size)
        write_shard(self.work / shard_name(shard), keys, labels, records)
        return [{"shard": shard, "size": len(labels)}]


def shard_encoder(model_dir: str, work: str, batch_size: int, device: str) -> ShardEncoder:
    """A ShardEncoder with its own copy of the model at `model_dir`: what a Ray actor builds."""
    from knnie.tasks.registry import load

    return ShardEncoder(load(model_dir, memories=False, device=device), work, batch_size)


def shard_name(i: int) -> str:
    return f"{i:06d}"


def encode_shards(config: BuildConfig, work: Path, parts: Sequence[FilePart], todo: Sequence[int],
                  ray: Any | None, workers: int | None, device: str, front: Any,
                  progress: Callable[[int], None]) -> None:
    """Encode parts `todo` into shards under `work`: by Ray Data actors when `ray` is given
    (`workers` of them: None, one per CPU of the cluster; each loads the model on `device`), else
    in this process with `front`, the model already loaded. `progress` is called with the examples
    of each shard once it is written."""
    items = [{"shard": i, **asdict(parts[i])} for i in todo]
    if ray is None:
        encoder = ShardEncoder(front, work, config.batch_size)
        rows = (row for item in items for row in encoder(item))
    else:
        from knnie.cluster import map_in_order, worker_count

        args = (config.model_dir, str(work), config.batch_size, device)
        rows = map_in_order(ray, items, shard_encoder, args, worker_count(ray, workers),
                            f"the finished shards are kept in {work}: rerun the same command to resume")
    for row in rows:
        progress(row["size"])


def build_sharded(model_dir: Path, data: Sequence[Path], name: str, *, index: str = "auto", fp16: bool = False,
                  code_size: int = 32, rerank: int = 64, batch_size: int = 64, source: str | None = None,
                  shards: int | None = None, ray_address: str | None = None, use_ray: bool = False,
                  workers: int | None = None, device: str = "cpu",
                  progress: Callable[[int, int, int], None] | None = None) -> MemoryConfig:
    """Build memory `name` of model `model_dir` from the labelled examples of `data` in shards
    (`shards` of them, else one per PART_RECORDS examples), encoded by Ray workers (`use_ray`; at
    `ray_address`, else a local instance) or by this process, then assembled without holding all
    keys. A rerun of a build that failed resumes from its finished shards. `device`: where the
    encoder runs ("auto" in a Ray worker that was given no GPU is the CPU). `progress(done, total,
    examples)` is called after each shard."""
    from knnie.tasks.model_dir import memory_dir
    from knnie.tasks.registry import load

    front = load(model_dir, memories=False, device="cpu" if use_ray else device)  # encodes here without Ray
    if index == "ivfpq":  # before hours of encoding, not after
        check_code_size(code_size, front.representer.dim)
    target = memory_dir(model_dir, name)
    work = target.with_name(f".{name}.build")
    blocks = front.task == "ner"
    files = [Path(f) for f in data]
    per_part = PART_RECORDS
    if shards:
        total = sum(sum(1 for _ in record_starts(f, blocks and f.suffix != ".jsonl")) for f in files
                    if f.suffix == ".jsonl" or blocks)
        per_part = max(1, -(-total // shards)) if total else PART_RECORDS
    config = BuildConfig(str(model_dir), [str(f) for f in files], front.fingerprint, per_part, index, fp16, code_size,
                         rerank, batch_size, source or (files[0].name if len(files) == 1 else "data"))
    parts = plan(files, per_part, blocks)
    _start_or_resume(work, config)
    todo = [i for i in range(len(parts)) if not _shard_ok(work / shard_name(i))]
    done, started = len(parts) - len(todo), time.monotonic()

    def step(examples: int) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, len(parts), examples)

    if todo and use_ray:
        from knnie.cluster import ray_session

        with ray_session(ray_address, workers) as ray:
            encode_shards(config, work, parts, todo, ray, workers, device, front, step)
    elif todo:
        encode_shards(config, work, parts, todo, None, None, device, front, step)
    log.info("encoded %d shards in %.0f s", len(todo), time.monotonic() - started)
    result = assemble(target, [work / shard_name(i) for i in range(len(parts))], front.fingerprint, index, fp16,
                      "l2", code_size, rerank, config.source)
    shutil.rmtree(work, ignore_errors=True)
    return result


def _start_or_resume(work: Path, config: BuildConfig) -> None:
    """Keep the shards of an earlier build of the same data and model, or start clean."""
    saved = work / "build.json"
    if saved.is_file():
        try:
            same = read_json(saved, "build config") == json.loads(json.dumps(asdict(config)))
        except DataError:
            same = False
        if same:
            log.warning("%s: resuming an earlier build of the same data", work)
            return
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    write_json(saved, asdict(config))
