"""One memory class for every task: vectors (keys) → labels (values), and the examples
behind them so that each prediction can show its neighbours.

A saved memory is a directory::

    memory.json        config: labels, model fingerprint, index kind, sizes, checksums
    keys.safetensors   keys (float32 or float16) and values (int64)
    records.jsonl      one JSON record per key (the example it came from)
    index.faiss        only for ivf/hnsw indexes, whose structure is costly to rebuild
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knnie.errors import DataError, IncompatibleArtefactError, KnnieError
from knnie.io import atomic_dir, read_json

INDEXES = ("flat", "ivf", "hnsw", "auto")  # "auto" picks one of the first three by the number of keys
FORMAT_VERSION = 1
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


@dataclass
class MemoryConfig:
    labels: list[str]
    fingerprint: str  # of the model whose vectors are the keys
    index: str = "flat"
    fp16: bool = False
    dim: int = 0
    size: int = 0
    nprobe: int = 16
    ef_search: int = 128
    checksums: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION


class Memory:
    """Labelled vectors with a FAISS index for exact or approximate L2 search."""

    def __init__(self, keys: np.ndarray, values: np.ndarray, records: list[dict[str, Any]],
                 labels: list[str], fingerprint: str, index: str = "auto", fp16: bool = False) -> None:
        if index not in INDEXES:
            raise KnnieError(f"unknown index '{index}'; choose one of {INDEXES}")
        if len(keys) == 0:
            raise KnnieError("cannot build an empty memory: the data gave no examples")
        if not (len(keys) == len(values) == len(records)):
            raise KnnieError(f"{len(keys)} keys, {len(values)} values and {len(records)} records differ in number")
        index = auto_index(len(keys)) if index == "auto" else index
        self.keys = np.ascontiguousarray(keys, dtype=np.float16 if fp16 else np.float32)
        self.values = np.asarray(values, dtype=np.int64)
        self.records = records
        self.config = MemoryConfig(labels=list(labels), fingerprint=fingerprint, index=index, fp16=fp16,
                                   dim=int(keys.shape[1]), size=len(keys))
        self._index = None
        self._cells = None  # k-means centroids grouping queries by region (`_locality_order`)
        self._groups = None  # identical keys grouped (`groups`)

    def __len__(self) -> int:
        return len(self.values)

    @property
    def labels(self) -> list[str]:
        return self.config.labels

    # -- search ---------------------------------------------------------------------------
    @property
    def exact(self) -> bool:
        """Whether a search returns the exact nearest keys (flat), not an approximation."""
        return self.config.index == "flat"

    def depths(self, k: int) -> tuple[int, ...]:
        """Search depths worth trying for k neighbours, cheapest first: IVF lists probed (up
        to all of them, which is exact) or HNSW beam widths (at least k); none for flat."""
        if self.config.index == "ivf":
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
        import faiss

        c = self.config
        keys = self.keys.astype(np.float32)
        if not self.exact and len(self.groups[1]) < len(self):  # one key per group of identical keys
            members, starts, _ = self.groups
            keys = keys[members[starts]]
        n = len(keys)
        store = "SQfp16" if c.fp16 else "Flat"
        if c.index == "flat":
            spec = store
        elif c.index == "ivf":
            nlist = max(1, min(int(math.sqrt(n)), n // 39))  # √n lists, ≥ 39 training points each
            spec = f"IVF{nlist},{store}"
        else:
            spec = "HNSW32" if not c.fp16 else "HNSW32_SQfp16"
        index = faiss.index_factory(c.dim, spec, faiss.METRIC_L2)
        if not index.is_trained:  # k-means on a bounded sample keeps 1M-key builds to minutes on 2 cores
            sample = np.random.default_rng(0).choice(n, min(n, IVF_TRAIN_PER_LIST * nlist), replace=False)
            index.train(keys[np.sort(sample)])
        index.add(keys)
        self._tune(index)
        return index

    @property
    def groups(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Identical keys grouped: key ids ordered by group (by id within one), each group's start
        in that order, and its size. Approximate indexes hold one key per group and `search`
        puts every member back in its place: an HNSW graph finds only some of several identical
        keys (of CoNLL words' exact neighbours, 95 % of duplicated ones against 99 % of the others),
        which moved dev F1; exact search counts each copy, and so does this."""
        if self._groups is None:
            rows = self.keys.view(np.dtype((np.void, self.keys.itemsize * self.config.dim))).ravel()
            _, inverse, counts = np.unique(rows, return_inverse=True, return_counts=True)
            self._groups = (np.argsort(inverse.ravel(), kind="stable"), np.cumsum(counts) - counts, counts)
        return self._groups

    def set_search(self, nprobe: int | None = None, ef_search: int | None = None) -> None:
        """Trade recall for speed on approximate indexes: IVF lists probed, HNSW beam width."""
        if nprobe is not None:
            self.config.nprobe = nprobe
        if ef_search is not None:
            self.config.ef_search = ef_search
        if self._index is not None:
            self._tune(self._index)

    def _tune(self, index) -> None:
        import faiss

        if self.config.index == "ivf":
            faiss.extract_index_ivf(index).nprobe = self.config.nprobe
        elif self.config.index == "hnsw":
            faiss.downcast_index(index).hnsw.efSearch = self.config.ef_search

    def search(self, queries: np.ndarray, k: int, batch_size: int = 8192, depth: int | None = None,
               exact: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest keys of each query: squared L2 distances (n, k) and key ids (n, k),
        nearest first. k is capped at the memory size. On an approximate index, `depth` (IVF
        lists probed, HNSW beam width) overrides the memory's setting for this search, and
        `exact` searches all keys by brute force instead (what tuning compares against)."""
        import faiss

        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.config.dim:
            raise KnnieError(f"queries have shape {queries.shape}; this memory holds {self.config.dim}-d keys")
        k = min(k, len(self))
        if len(queries) == 0:
            return np.zeros((0, k), np.float32), np.zeros((0, k), np.int64)
        brute = exact and not self.exact
        keys = self.keys.astype(np.float32, copy=False) if brute else None
        params = self._search_params(depth)

        grouped = not brute and self.index.ntotal < len(self)  # an index of distinct keys, in `groups` order

        def search(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            if brute:
                return faiss.knn(q, keys, k)
            found = self.index.search(q, min(k, self.index.ntotal), params=params)
            return self._ungroup(*found, k) if grouped else found

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
        if self.config.index == "ivf":
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
            kmeans.train(self.keys.astype(np.float32))
            self._cells = kmeans.centroids
        _, cell = faiss.knn(queries, self._cells, 1)
        return np.argsort(cell[:, 0], kind="stable")

    # -- compatibility --------------------------------------------------------------------
    def check_compatible(self, fingerprint: str, labels: list[str], name: str = "memory",
                         command: str | None = None) -> None:
        """Refuse a memory whose keys came from another model or whose labels differ; the
        message names `command` (the task's memory build command) as the way to rebuild it."""
        if self.config.fingerprint != fingerprint:
            how = f"with `{command}` using this model" if command else "with this model"
            raise IncompatibleArtefactError(
                f"{name} was built by a model with fingerprint {self.config.fingerprint}, but this model's is "
                f"{fingerprint}: its keys live in another vector space. Rebuild it {how}."
            )
        if self.config.labels != list(labels):
            raise IncompatibleArtefactError(
                f"{name} has labels {self.config.labels[:5]}... but the model has {list(labels)[:5]}...: "
                "label sets differ, so its values cannot be read. Rebuild it with this model."
            )

    # -- persistence ----------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write the memory directory atomically (an old one stays intact on failure)."""
        import faiss
        from safetensors.numpy import save_file

        with atomic_dir(path) as tmp:
            save_file({"keys": self.keys, "values": self.values}, str(tmp / "keys.safetensors"))
            with open(tmp / "records.jsonl", "w", encoding="utf-8") as f:
                for r in self.records:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
            files = ["keys.safetensors", "records.jsonl"]
            if self.config.index != "flat":
                faiss.write_index(self.index, str(tmp / "index.faiss"))
                files.append("index.faiss")
            self.config.checksums = {f: _sha256(tmp / f) for f in files}
            (tmp / "memory.json").write_text(json.dumps(asdict(self.config), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Memory:
        """Read a memory directory, verifying every file against its recorded checksum."""
        import faiss
        from safetensors.numpy import load_file

        path = Path(path)
        raw = read_json(path / "memory.json", "memory config")
        try:
            config = MemoryConfig(**raw)
        except TypeError as e:
            raise DataError(f"not a knnie memory config ({e})", path=path / "memory.json") from e
        for name, digest in config.checksums.items():
            f = path / name
            if not f.is_file():
                raise DataError("file missing from the memory directory", path=f)
            if _sha256(f) != digest:
                raise DataError("file is truncated or corrupt (checksum mismatch); rebuild the memory", path=f)
        arrays = load_file(str(path / "keys.safetensors"))
        records = [json.loads(line) for line in (path / "records.jsonl").read_text(encoding="utf-8").splitlines()]
        mem = cls(arrays["keys"], arrays["values"], records, config.labels, config.fingerprint,
                  config.index, config.fp16)
        mem.config = config
        if (path / "index.faiss").is_file():
            try:
                mem._index = faiss.read_index(str(path / "index.faiss"))
            except RuntimeError as e:
                raise DataError(f"cannot read FAISS index ({e})", path=path / "index.faiss") from e
            mem._tune(mem._index)
        return mem


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()
