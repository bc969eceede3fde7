"""One memory class for every task: vectors (keys) → labels (values), and the examples
behind them so that each prediction can show its neighbours.

A memory owns its label vocabulary (values index `memory.labels`, which may hold labels a
classifier head has never seen), its metric (`l2`, or `cosine` on normalised keys) and the
provenance of every entry (a source name: "train", "ds", a file the user added). It grows
with `add`, shrinks with `remove(source)`, and shards combine with `Memory.merge`.

A saved memory is a directory::

    memory.json        config: labels, sources, metric, representation fingerprint, index kind, sizes, checksums
    keys.safetensors   keys (float32 or float16), values (int64), source ids (int32) and the byte offset
                       of each record in records.jsonl (int64, one more than keys)
    records.jsonl      one JSON record per key (the example it came from)
    index.faiss        only for ivf/ivfpq/hnsw indexes, whose structure is costly to rebuild

Large memories are opened memory-mapped (`Memory.load(path, mmap=True)`, the default above
MMAP_AUTO_BYTES of keys): keys stay on disk and pages are read as searches touch them, the
records are read one line at a time when a neighbour is shown, and an IVF index maps its lists.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knnie.errors import DataError, IncompatibleArtefactError, KnnieError, NotFoundError
from knnie.io import (
    SafetensorsWriter,
    atomic_dir,
    file_digest,
    mmap_safetensors,
    read_json,
    read_safetensors,
    recover,
    verify_files,
)
from knnie.memory.records import LazyRecords, line_offsets

INDEXES = ("flat", "ivf", "ivfpq", "hnsw", "auto")  # "auto" picks flat, hnsw or ivf by the number of keys
METRICS = ("l2", "cosine")
FORMAT_VERSION = 3  # 2: own labels, metric and sources, checksums; 3: file sizes, record offsets, ivfpq
OLDEST_FORMAT = 2  # read without record offsets (records are indexed on load) and without sizes
MMAP_AUTO_BYTES = 2 << 30  # `Memory.load` maps keys files of this size and above instead of reading them
RAM_HEADROOM = 0.8  # a memory read into RAM may use this share of the available memory, no more
CHUNK = 262_144  # keys converted to float32 at a time when an index is filled or searched by brute force
REQUIRED_FILES = ("keys.safetensors", "records.jsonl")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
IVF_TRAIN_PER_LIST = 64  # k-means training points per IVF list
# "auto": exact search up to AUTO_FLAT_MAX keys (at 25k relation keys flat still beat HNSW at k=64); HNSW up to
# AUTO_HNSW_MAX (on 203,621 CoNLL word keys it reached the exact search's dev F1 at a small fraction of its time,
# where IVF needed more time than flat); IVF above (HNSW recall falls at 1M keys, bench/results/memory_scale.md)
AUTO_FLAT_MAX = 50_000
AUTO_HNSW_MAX = 500_000
DEPTHS = {"ivf": (1, 2, 4, 8, 16, 32, 64, 128, 256), "hnsw": (8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384)}
LOCALITY_MIN = 2048  # queries from which an approximate search visits them grouped by region
LOCALITY_CELLS = 256  # regions (k-means cells of the keys) that group them


def auto_index(size: int) -> str:
    """The index kind "auto" stands for, by the number of keys."""
    return "flat" if size <= AUTO_FLAT_MAX else "hnsw" if size <= AUTO_HNSW_MAX else "ivf"


def build_index(config: MemoryConfig, keys: np.ndarray):
    """A FAISS index of `keys` (any array of rows: in RAM or memory-mapped) for `config`'s index
    kind, trained on a sample of rows and filled CHUNK rows at a time, so that keys larger than
    RAM never need to be held whole."""
    import faiss

    c, n = config, len(keys)
    store = "SQfp16" if c.fp16 else "Flat"
    nlist = max(1, min(int(math.sqrt(n)), n // 39))  # √n lists, ≥ 39 training points each
    if c.index == "ivfpq":
        spec = f"IVF{nlist},PQ{2 * c.code_size}x4fs"
    else:
        spec = {"flat": store, "ivf": f"IVF{nlist},{store}", "hnsw": "HNSW32_SQfp16" if c.fp16 else "HNSW32"}[c.index]
    metric = faiss.METRIC_INNER_PRODUCT if c.metric == "cosine" else faiss.METRIC_L2
    index = faiss.index_factory(c.dim, spec, metric)
    if not index.is_trained:  # k-means on a bounded sample keeps 1M-key builds to minutes on 2 cores
        sample = np.random.default_rng(0).choice(n, min(n, IVF_TRAIN_PER_LIST * nlist), replace=False)
        index.train(np.asarray(keys[np.sort(sample)], dtype=np.float32))
    for start in range(0, n, CHUNK):
        index.add(np.asarray(keys[start : start + CHUNK], dtype=np.float32))
    return index


def check_code_size(code_size: int, dim: int) -> None:
    """IVF-PQ splits a key into 2 × code_size parts of equal width: refuse sizes that do not divide it."""
    fits = [b for b in (8, 16, 24, 32, 48, 64, 96, 128, 192) if dim % (2 * b) == 0]
    if not isinstance(code_size, int) or code_size < 1 or dim % (2 * code_size):
        raise KnnieError(f"code size {code_size!r} does not fit {dim}-d keys (IVF-PQ splits a key into 2 × code size "
                         f"parts of equal width); choose one of {fits}")


def available_ram() -> int:
    """Bytes of memory this machine can still give (MemAvailable), or 0 where it cannot tell."""
    try:
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))
    except (OSError, StopIteration, ValueError):
        return 0


@dataclass
class MemoryConfig:
    labels: list[str]  # the memory's label vocabulary: values index it
    fingerprint: str  # of the representation (encoder + pooling) whose vectors are the keys
    metric: str = "l2"
    sources: list[str] = field(default_factory=list)  # source names: source ids index it
    index: str = "flat"
    fp16: bool = False
    dim: int = 0
    size: int = 0
    nprobe: int = 16
    ef_search: int = 128
    code_size: int = 32  # ivfpq: bytes per key (2 × code_size product quantisers of 4 bits, FAISS fast scan)
    rerank: int = 64  # ivfpq: candidates re-ranked by their exact distance from the stored keys (0: none)
    checksums: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)  # bytes of each file: checked when a load maps them
    format_version: int = FORMAT_VERSION


def check_name(name: str) -> str:
    """A memory name becomes a directory name inside a model: only plain names are allowed."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise KnnieError(
            f"invalid memory name {name!r}: use 1-64 letters, digits, '_' or '-', starting with a letter or digit "
            "(it names a directory inside the model)")
    return name


class Memory:
    """Labelled vectors with a FAISS index for exact or approximate nearest-neighbour search.

    `values` are ids into `labels`; every entry comes from the source `source` (more are
    added with `add`). Distances are squared L2; for the `cosine` metric keys and queries are
    normalised, so the distance is 2 − 2·cos and the two metrics agree on normalised keys."""

    def __init__(self, keys: np.ndarray, values: np.ndarray, records: list[dict[str, Any]],
                 labels: Sequence[str], fingerprint: str, index: str = "auto", fp16: bool = False,
                 metric: str = "l2", source: str = "default", code_size: int = 32) -> None:
        if index not in INDEXES:
            raise KnnieError(f"unknown index '{index}'; choose one of {INDEXES}")
        if metric not in METRICS:
            raise KnnieError(f"unknown metric '{metric}'; choose one of {METRICS}")
        if len(keys) == 0:
            raise KnnieError("cannot build an empty memory: the data gave no examples")
        index = auto_index(len(keys)) if index == "auto" else index
        self.config = MemoryConfig(labels=list(labels), fingerprint=fingerprint, metric=metric, sources=[source],
                                   index=index, fp16=fp16, dim=int(keys.shape[1]), size=len(keys), code_size=code_size)
        if index == "ivfpq":
            check_code_size(code_size, self.config.dim)
        self.keys, self.values, self.records = self._checked(keys, values, records)
        self.source_ids = np.zeros(len(self.values), dtype=np.int32)
        self._index = None
        self._cells = None  # k-means centroids grouping queries by region (`_locality_order`)
        self._groups = None  # identical keys grouped (`groups`)

    @classmethod
    def from_labels(cls, keys: np.ndarray, labels: Sequence[str], records: list[dict[str, Any]], fingerprint: str,
                    **kwargs: Any) -> Memory:
        """A memory from one label name per key; its vocabulary is the sorted set of names."""
        vocab = sorted(set(labels))
        ids = {label: i for i, label in enumerate(vocab)}
        return cls(keys, np.array([ids[label] for label in labels], dtype=np.int64), records, vocab, fingerprint,
                   **kwargs)

    def _checked(self, keys: np.ndarray, values: np.ndarray, records: list[dict[str, Any]]
                 ) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Keys in the stored dtype (normalised for cosine), values checked against the vocabulary."""
        keys = np.asarray(keys, dtype=np.float32)
        if keys.ndim != 2 or keys.shape[1] != self.config.dim:
            raise KnnieError(f"keys have shape {keys.shape}; this memory holds {self.config.dim}-d keys")
        values = np.asarray(values, dtype=np.int64)
        if not (len(keys) == len(values) == len(records)):
            raise KnnieError(f"{len(keys)} keys, {len(values)} values and {len(records)} records differ in number")
        if len(values) and (values.min() < 0 or values.max() >= len(self.labels)):
            raise KnnieError(f"values must index the memory's {len(self.labels)} labels")
        if self.config.metric == "cosine":
            keys = keys / np.maximum(np.linalg.norm(keys, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(keys, dtype=np.float16 if self.config.fp16 else np.float32), values, list(records)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def labels(self) -> list[str]:
        return self.config.labels

    @property
    def sources(self) -> list[str]:
        return self.config.sources

    def entry_labels(self, ids: np.ndarray) -> np.ndarray:
        """The label names of entries `ids` (any shape)."""
        return np.asarray(self.labels, dtype=object)[self.values[ids]]

    # -- growing and shrinking -------------------------------------------------------------
    def add(self, keys: np.ndarray, labels: Sequence[str], records: list[dict[str, Any]], source: str) -> None:
        """Append entries labelled by name; a label the memory has not seen joins its vocabulary."""
        if len(keys) == 0:
            raise KnnieError("nothing to add: no keys given")
        index = {label: i for i, label in enumerate(self.labels)}
        for label in labels:
            if label not in index:
                index[label] = len(self.labels)
                self.labels.append(label)
        keys, values, records = self._checked(keys, [index[label] for label in labels], records)
        if source not in self.sources:
            self.sources.append(source)
        self.keys = np.concatenate([self.keys, keys])
        self.values = np.concatenate([self.values, values])
        self.records = [*self.records, *records]  # a loaded memory's lazy records are read here
        self.source_ids = np.concatenate([self.source_ids, np.full(len(values), self.sources.index(source), np.int32)])
        self.config.size = len(self.values)
        self._groups = None
        if self._index is not None and self.exact:
            self._index.add(self.keys[-len(values):].astype(np.float32))
        else:  # an approximate index holds one key per group of identical keys: rebuilt on the next search
            self._index = self._cells = None

    def remove(self, source: str) -> int:
        """Drop every entry of `source`; returns how many. The index is rebuilt from what is left,
        exactly as it would be built from those entries alone, and labels only those entries had
        leave the vocabulary (so a remove undoes an add's new labels too)."""
        if source not in self.sources:
            raise NotFoundError(f"no source '{source}' in this memory (its sources: {', '.join(self.sources)})")
        sid = self.sources.index(source)
        keep = self.source_ids != sid
        if not keep.any():
            raise KnnieError(f"removing '{source}' would leave the memory empty; delete the memory instead")
        values = self.values[keep]
        gone = np.setdiff1d(self.values, values)
        if len(gone):
            self.config.labels = [label for i, label in enumerate(self.labels) if i not in gone]
            values = values - np.searchsorted(gone, values)  # ids shift down past the labels that left
        self.keys, self.values = self.keys[keep], values
        self.records = [r for r, k in zip(self.records, keep) if k]
        ids = self.source_ids[keep]
        self.config.sources = [s for i, s in enumerate(self.sources) if i != sid]
        self.source_ids = (ids - (ids > sid)).astype(np.int32)
        self.config.size = len(self.values)
        self._index = self._cells = self._groups = None
        return int((~keep).sum())

    @classmethod
    def merge(cls, shards: Sequence[Memory]) -> Memory:
        """One memory of several built with the same representation and metric (shards of a
        large build, or memories of different sources); labels and sources are joined by name."""
        if not shards:
            raise KnnieError("nothing to merge")
        first = shards[0]
        for other in shards[1:]:
            for what in ("fingerprint", "metric", "dim"):
                if getattr(other.config, what) != getattr(first.config, what):
                    raise IncompatibleArtefactError(
                        f"cannot merge memories of different {what}: {getattr(first.config, what)} and "
                        f"{getattr(other.config, what)}")
        merged = cls(first.keys, first.values, first.records, list(first.labels), first.config.fingerprint,
                     first.config.index, first.config.fp16, first.config.metric, code_size=first.config.code_size)
        merged.config.sources, merged.source_ids = list(first.sources), first.source_ids.copy()
        merged.set_search(first.config.nprobe, first.config.ef_search, first.config.rerank)
        for other in shards[1:]:
            for sid, source in enumerate(other.sources):
                rows = np.flatnonzero(other.source_ids == sid)
                if len(rows):
                    merged.add(other.keys[rows], list(other.entry_labels(rows)), [other.records[i] for i in rows],
                               source)
        return merged

    # -- search ---------------------------------------------------------------------------
    @property
    def exact(self) -> bool:
        """Whether a search returns the exact nearest keys (flat), not an approximation."""
        return self.config.index == "flat"

    def depths(self, k: int) -> tuple[int, ...]:
        """Search depths worth trying for k neighbours, cheapest first: IVF lists probed (up
        to all of them, which is exact) or HNSW beam widths (at least k); none for flat."""
        if self.config.index in ("ivf", "ivfpq"):
            import faiss

            nlist = faiss.extract_index_ivf(self.index).nlist
            return (*(d for d in DEPTHS["ivf"] if d < nlist), nlist)
        return tuple(d for d in DEPTHS.get(self.config.index, ()) if d >= k)

    @property
    def index(self):
        if self._index is None:
            self._index = self._build_index()
        return self._index

    def _build_index(self):
        keys = self.keys
        if not self.exact and self.in_ram and len(self.groups[1]) < len(self):  # one key per group of identical keys
            members, starts, _ = self.groups
            keys = keys[members[starts]]
        index = build_index(self.config, keys)
        self._tune(index)
        return index

    @property
    def in_ram(self) -> bool:
        """Whether the keys are held in memory, not mapped from disk (`load(mmap=True)`)."""
        return not isinstance(self.keys, np.memmap)

    @property
    def groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Identical keys grouped: key ids ordered by group (by id within one), each group's start
        in that order, and its size. Approximate indexes hold one key per group and `search`
        puts every member back in its place: an HNSW graph finds only some of several identical
        keys (of CoNLL words' exact neighbours, 95 % of duplicated ones against 99 % of the others),
        which moved dev F1; exact search counts each copy, and so does this. (Memory-mapped keys are
        not grouped: that would read them all; their indexes hold every key.)"""
        if self._groups is None:
            rows = self.keys.view(np.dtype((np.void, self.keys.itemsize * self.config.dim))).ravel()
            _, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
            self._groups = (np.argsort(inverse.ravel(), kind="stable"), np.cumsum(counts) - counts, counts)
        return self._groups

    def set_search(self, nprobe: int | None = None, ef_search: int | None = None, rerank: int | None = None) -> None:
        """Trade recall for speed on approximate indexes: IVF lists probed, HNSW beam width,
        IVF-PQ candidates re-ranked by exact distance."""
        if nprobe is not None:
            self.config.nprobe = nprobe
        if ef_search is not None:
            self.config.ef_search = ef_search
        if rerank is not None:
            self.config.rerank = rerank
        if self._index is not None:
            self._tune(self._index)

    def _tune(self, index) -> None:
        import faiss

        if self.config.index in ("ivf", "ivfpq"):
            faiss.extract_index_ivf(index).nprobe = self.config.nprobe
        elif self.config.index == "hnsw":
            faiss.downcast_index(index).hnsw.efSearch = self.config.ef_search

    def search(self, queries: np.ndarray, k: int, batch_size: int = 8192, depth: int | None = None,
               exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest keys of each query: squared L2 distances (n, k) (between normalised
        vectors for `cosine`: 2 − 2·cos) and key ids (n, k), nearest first. k is capped at the
        memory size; a hit an approximate index could not fill has distance inf. On an
        approximate index, `depth` (IVF lists probed, HNSW beam width) overrides the memory's
        setting for this search, and `exact` searches all keys by brute force instead (what
        tuning compares against). An IVF-PQ index's candidates (`config.rerank` of them) are
        re-ranked by their exact distances from the stored keys."""
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.config.dim:
            raise KnnieError(f"queries have shape {queries.shape}; this memory holds {self.config.dim}-d keys")
        if self.config.metric == "cosine":
            queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        k = min(k, len(self))
        if len(queries) == 0:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        brute = (exact and not self.exact) or (self.exact and not self.in_ram)  # mapped keys: no in-RAM copy
        params = self._search_params(depth)
        rerank = self.config.rerank if self.config.index == "ivfpq" else 0
        grouped = not brute and self.index.ntotal < len(self)  # an index of distinct keys, in `groups` order

        def search(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            if brute:
                return self._brute(q, k)
            dist, ids = self.index.search(q, min(max(k, rerank), self.index.ntotal), params=params)
            if grouped:
                dist, ids = self._ungroup(dist, ids, k)
            if self.config.metric == "cosine":
                dist = 2.0 - 2.0 * dist  # inner products of unit vectors → squared L2 between them
            return self._rerank(q, ids, k) if rerank else (dist, ids)

        order = self._locality_order(queries) if not (exact or self.exact) else None
        if order is not None:
            queries = queries[order]
        parts = [search(queries[i : i + batch_size]) for i in range(0, len(queries), batch_size)]
        dist = np.concatenate([p[0] for p in parts])
        ids = np.concatenate([p[1] for p in parts])
        if order is not None:
            dist[order], ids[order] = dist.copy(), ids.copy()
        # approximate indexes may return fewer than k hits (-1): give them infinite distance
        missing = ids < 0
        if missing.any():
            dist[missing], ids[missing] = np.inf, 0
        return np.maximum(dist, 0.0), ids

    def _brute(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact k nearest keys by brute force, CHUNK keys at a time (mapped keys are read once
        per call and never held whole); ties go to the lower id."""
        import faiss

        best_d, best_i = np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        for start in range(0, len(self), CHUNK):
            block = np.asarray(self.keys[start : start + CHUNK], dtype=np.float32)
            d, i = faiss.knn(queries, block, min(k, len(block)))
            d, i = np.concatenate([best_d, d], 1), np.concatenate([best_i, i + start], 1)
            top = np.argsort(d, axis=1, kind="stable")[:, :k]
            best_d, best_i = np.take_along_axis(d, top, 1), np.take_along_axis(i, top, 1)
        return best_d, best_i

    def _rerank(self, queries: np.ndarray, ids: np.ndarray, k: int, rows: int = 256
                ) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest of each query's candidate ids (-1: none) by exact squared L2 from the
        stored keys, read in id order (sequential on disk) `rows` queries at a time."""
        dists = np.full(ids.shape, np.inf, np.float32)
        for s in range(0, len(ids), rows):
            cand = ids[s : s + rows]
            flat = np.maximum(cand, 0).ravel()
            order = np.argsort(flat, kind="stable")
            keys = np.empty((len(flat), self.config.dim), np.float32)
            keys[order] = self.keys[flat[order]]
            diff = keys.reshape(*cand.shape, -1) - queries[s : s + rows, None, :]
            dists[s : s + rows] = np.where(cand >= 0, np.einsum("ncd,ncd->nc", diff, diff), np.inf)
        top = np.argsort(dists, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(dists, top, 1), np.take_along_axis(ids, top, 1)

    def _ungroup(self, dist: np.ndarray, gids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Results over distinct keys → the k nearest key ids, each group's members in its place
        (lowest ids first); rows with fewer than k get id -1 at infinite distance."""
        members, starts, counts = self.groups
        found = np.maximum(gids, 0)
        reps = np.where(gids >= 0, np.minimum(counts[found], k), 0)  # more than k copies never fit
        flat = reps.ravel()
        offset = np.arange(flat.sum()) - np.repeat(np.cumsum(flat) - flat, flat)
        ids = members[np.repeat(starts[found].ravel(), flat) + offset]
        dists = np.repeat(dist.ravel(), flat)
        length = reps.sum(1)
        fits = np.arange(k)[None, :] < length[:, None]
        take = np.where(fits, (np.cumsum(length) - length)[:, None] + np.arange(k)[None, :], 0)
        if not len(ids):
            return np.full(take.shape, np.inf, np.float32), np.full(take.shape, -1, np.int64)
        return np.where(fits, dists[take], np.inf), np.where(fits, ids[take], -1)

    def _search_params(self, depth: int | None):
        """FAISS search parameters for `depth`, or None for the index's own setting."""
        import faiss

        if depth is None or self.exact:
            return None
        if self.config.index in ("ivf", "ivfpq"):
            return faiss.SearchParametersIVF(nprobe=depth)
        return faiss.SearchParametersHNSW(efSearch=depth)

    def _locality_order(self, queries: np.ndarray) -> np.ndarray | None:
        """An order that visits many queries region by region (their nearest of LOCALITY_CELLS
        k-means centroids of the keys), so that consecutive queries of an approximate search
        touch the same keys while they are in the CPU cache: a third less time on CoNLL words.
        None for few queries or a small memory."""
        import faiss

        if len(queries) < LOCALITY_MIN or len(self) < 8 * LOCALITY_CELLS:
            return None
        if self._cells is None:
            kmeans = faiss.Kmeans(self.config.dim, LOCALITY_CELLS, niter=10, seed=0, max_points_per_centroid=64)
            sample = np.random.default_rng(0).choice(len(self), min(len(self), 64 * LOCALITY_CELLS), replace=False)
            kmeans.train(np.asarray(self.keys[np.sort(sample)], dtype=np.float32))
            self._cells = kmeans.centroids
        _, cell = faiss.knn(queries, self._cells, 1)
        return np.argsort(cell[:, 0], kind="stable")

    # -- compatibility --------------------------------------------------------------------
    def check_compatible(self, fingerprint: str, name: str = "memory") -> None:
        """Refuse a memory whose keys came from another representation (encoder + pooling).
        Labels need not match: they are aligned by name when distributions are mixed."""
        if self.config.fingerprint != fingerprint:
            raise IncompatibleArtefactError(
                f"{name} was built by a representation with fingerprint {self.config.fingerprint}, but this model's "
                f"is {fingerprint}: its keys live in another vector space. Rebuild it with this model."
            )

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the memory directory atomically (an old one stays intact on failure)."""
        lines = ((json.dumps(r, ensure_ascii=False) + "\n").encode() for r in self.records)
        write_memory(path, self.config, (self.keys[i : i + CHUNK] for i in range(0, len(self), CHUNK)), self.values,
                     lines, self.source_ids, None if self.exact else self.index)

    @classmethod
    def load(cls, path: str | Path, mmap: bool | None = None) -> Memory:
        """Read a memory directory: only the files its memory.json lists. In RAM (`mmap` False)
        every file is verified against its checksum, and a memory larger than the free RAM is
        refused; memory-mapped (`mmap` True, and by default from MMAP_AUTO_BYTES of keys) only
        the files' sizes are checked, so that a 10M-key memory opens in seconds. Records are read
        lazily either way."""
        import faiss

        path = Path(path)
        recover(path)
        config = _read_config(path / "memory.json")
        keys_file = path / "keys.safetensors"
        for name in config.checksums:
            f = path / name
            if not f.is_file():
                raise DataError("file missing; rebuild the memory", path=f)
            if name in config.sizes and f.stat().st_size != config.sizes[name]:
                raise DataError(f"file is truncated or corrupt ({f.stat().st_size} bytes, memory.json says "
                                f"{config.sizes[name]}); rebuild the memory", path=f)
        on_disk = sum((path / name).stat().st_size for name in config.checksums if name != "records.jsonl")
        mmap = on_disk >= MMAP_AUTO_BYTES if mmap is None else mmap
        if not mmap:
            free = available_ram()
            if free and on_disk > RAM_HEADROOM * free:
                raise KnnieError(f"{path}: this memory needs {on_disk / 2**30:.1f} GiB of RAM and {free / 2**30:.1f} "
                                 "GiB are free: open it memory-mapped (Memory.load(path, mmap=True), or leave mmap "
                                 "unset), which keeps its keys on disk")
            verify_files(path, config.checksums, "rebuild the memory")
        elif not config.sizes:  # a memory saved before sizes were recorded: verify it in full
            verify_files(path, config.checksums, "rebuild the memory")
        arrays = (mmap_safetensors if mmap else read_safetensors)(keys_file, ("keys", "values", "sources"))
        records_file = path / "records.jsonl"
        offsets = np.asarray(arrays["offsets"]) if "offsets" in arrays else line_offsets(records_file)
        mem = cls._restore(config, arrays["keys"], np.asarray(arrays["values"]), np.asarray(arrays["sources"]),
                           LazyRecords(records_file, offsets), keys_file)
        if "index.faiss" in config.checksums:
            try:
                mem._index = faiss.read_index(str(path / "index.faiss"), faiss.IO_FLAG_MMAP_IFC if mmap else 0)
            except RuntimeError as e:
                raise DataError(f"cannot read FAISS index ({e})", path=path / "index.faiss") from e
            mem._tune(mem._index)
        return mem

    @classmethod
    def _restore(cls, config: MemoryConfig, keys: np.ndarray, values: np.ndarray, sources: np.ndarray,
                 records: Sequence[dict[str, Any]], keys_file: Path) -> Memory:
        """A memory of saved parts, checked against its config (keys are used as stored: they
        were normalised when the memory was built)."""
        n = len(values)
        if keys.ndim != 2 or keys.shape != (n, config.dim) or len(sources) != n or len(records) != n:
            raise DataError(f"keys {keys.shape}, {n} values, {len(sources)} source ids and {len(records)} records "
                            f"do not fit memory.json ({config.size} keys of dim {config.dim})", path=keys_file)
        if n == 0 or values.min() < 0 or values.max() >= len(config.labels):
            raise DataError(f"values do not index the {len(config.labels)} labels of memory.json", path=keys_file)
        if not 0 <= sources.min() <= sources.max() < len(config.sources):
            raise DataError("source ids do not fit the sources of memory.json", path=keys_file)
        mem = cls.__new__(cls)
        mem.config, mem.keys, mem.values, mem.records = config, keys, values.astype(np.int64), records
        mem.source_ids = sources.astype(np.int32)
        mem._index = mem._cells = mem._groups = None
        return mem


def write_memory(path: str | Path, config: MemoryConfig, key_chunks: Iterable[np.ndarray], values: np.ndarray,
                 record_lines: Iterable[bytes], sources: np.ndarray | None = None, index: Any = None) -> None:
    """Write a memory directory atomically from its parts, streamed: keys chunk by chunk (in the
    config's dtype, already normalised for cosine), one record line per key; `index` is written as
    given, or (None, for a non-flat kind) trained and filled from the written keys, which are read
    back memory-mapped. `config` gets the files' checksums and sizes."""
    import faiss

    with atomic_dir(path) as tmp:
        dtype = np.dtype(np.float16 if config.fp16 else np.float32)
        sources = np.zeros(len(values), np.int32) if sources is None else sources
        checksums = write_store(tmp, key_chunks, dtype, values, sources, record_lines)
        if config.index != "flat":
            if index is None:
                index = build_index(config, mmap_safetensors(tmp / "keys.safetensors", ("keys",))["keys"])
            faiss.write_index(index, str(tmp / "index.faiss"))
            checksums["index.faiss"] = file_digest(tmp / "index.faiss")
        _write_config(tmp, config, checksums)


def reindex(source: str | Path, target: str | Path, index: str, code_size: int | None = None) -> MemoryConfig:
    """The memory at `source` with another index kind (`code_size` for ivfpq), written at `target`:
    keys and records are hard-linked, not copied (they never change in place), so that several
    indexes of one large memory cost the disk of one set of keys."""
    from knnie.io import copy_into

    source = Path(source)
    config = _read_config(source / "memory.json")
    verify_files(source, {f: d for f, d in config.checksums.items() if f != "index.faiss"}, "rebuild the memory")
    config.index = auto_index(config.size) if index == "auto" else index
    config.code_size = code_size or config.code_size
    if config.index == "ivfpq":
        check_code_size(config.code_size, config.dim)
    with atomic_dir(target) as tmp:
        for f in REQUIRED_FILES:
            copy_into(source / f, tmp / f)
        checksums = {f: config.checksums[f] for f in REQUIRED_FILES}
        if config.index != "flat":
            import faiss

            faiss.write_index(build_index(config, mmap_safetensors(tmp / "keys.safetensors")["keys"]),
                              str(tmp / "index.faiss"))
            checksums["index.faiss"] = file_digest(tmp / "index.faiss")
        _write_config(tmp, config, checksums)
    return config


def _write_config(root: Path, config: MemoryConfig, checksums: dict[str, str]) -> None:
    """memory.json, last: it lists the checksums and sizes of the files written before it."""
    config.checksums, config.format_version = checksums, FORMAT_VERSION
    config.sizes = {f: (root / f).stat().st_size for f in checksums}
    (root / "memory.json").write_text(json.dumps(asdict(config), indent=2) + "\n", encoding="utf-8")


def write_store(root: Path, key_chunks: Iterable[np.ndarray], dtype: np.dtype, values: np.ndarray,
                sources: np.ndarray, record_lines: Iterable[bytes]) -> dict[str, str]:
    """Write records.jsonl (one line per key, each ending in a newline) and keys.safetensors
    (keys streamed chunk by chunk, values, source ids, record offsets) into `root`; returns the
    files' sha256, computed as they are written."""
    sha, offsets = hashlib.sha256(), [0]
    with open(root / "records.jsonl", "wb") as f:
        for line in record_lines:
            f.write(line)
            sha.update(line)
            offsets.append(offsets[-1] + len(line))
    n, offsets = len(values), np.array(offsets, dtype=np.int64)
    if len(offsets) != n + 1:
        raise KnnieError(f"{len(offsets) - 1} records for {n} keys")
    chunks = iter(key_chunks)
    first = next(chunks)
    writer = SafetensorsWriter(root / "keys.safetensors", {
        "keys": (dtype, (n, first.shape[1])), "values": (np.int64, (n,)), "sources": (np.int32, (n,)),
        "offsets": (np.int64, (n + 1,))})
    for chunk in itertools.chain([first], chunks):
        writer.write("keys", chunk)
    writer.write("values", values)
    writer.write("sources", sources)
    writer.write("offsets", offsets)
    return {"keys.safetensors": writer.close(), "records.jsonl": sha.hexdigest()}


def _read_config(path: Path) -> MemoryConfig:
    """memory.json, refused when it is of an unknown version or lists no checksums."""
    raw = read_json(path, "memory config")
    if not isinstance(raw, dict):
        raise DataError("not a knnie memory config (not a JSON object)", path=path)
    version = raw.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise DataError("not a knnie memory config (no format_version)", path=path, field="format_version")
    if version > FORMAT_VERSION:
        raise KnnieError(f"{path}: memory format {version} was made by a newer knnie (this one reads up to "
                         f"{FORMAT_VERSION}); upgrade knnie")
    if version < OLDEST_FORMAT:
        raise IncompatibleArtefactError(f"{path}: memory format {version} was made by an older knnie, whose keys "
                                        "were fingerprinted with the classifier head; rebuild the memory")
    checksums = raw.get("checksums")
    if not isinstance(checksums, dict) or not set(REQUIRED_FILES) <= set(checksums):
        raise DataError(f"lists no checksums for {', '.join(REQUIRED_FILES)}: files cannot be verified; "
                        "rebuild the memory", path=path, field="checksums")
    try:
        return MemoryConfig(**raw)
    except TypeError as e:
        raise DataError(f"not a knnie memory config ({e})", path=path) from e
