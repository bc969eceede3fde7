"""One memory class for every task: vectors (keys) → labels (values), and the examples
behind them so that each prediction can show its neighbours.

A saved memory is a directory::

    memory.json        config: labels, model fingerprint, index kind, sizes, checksums
    keys.safetensors   keys (float32 or float16) and values (int64)
    records.jsonl      one JSON record per key (the example it came from)
    index.faiss        only for ivf/hnsw indexes, whose structure is costly to rebuild
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knnie.errors import DataError, IncompatibleArtefactError, KnnieError
from knnie.io import atomic_dir, file_digest, read_json, read_safetensors, recover, verify_files

INDEXES = ("flat", "ivf", "hnsw", "auto")  # "auto" picks one of the first three by the number of keys
FORMAT_VERSION = 2  # 2: checksums required, only listed files read
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


def check_name(name: str) -> str:
    """A memory name becomes a directory name inside a model: only plain names are allowed."""
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise KnnieError(
            f"invalid memory name {name!r}: use 1-64 letters, digits, '_' or '-', starting with a letter or digit "
            "(it names a directory inside the model)")
    return name


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

        c, n = self.config, len(self)
        store = "SQfp16" if c.fp16 else "Flat"
        if c.index == "flat":
            spec = store
        elif c.index == "ivf":
            nlist = max(1, min(int(math.sqrt(n)), n // 39))  # √n lists, ≥ 39 training points each
            spec = f"IVF{nlist},{store}"
        else:
            spec = "HNSW32" if not c.fp16 else "HNSW32_SQfp16"
        index = faiss.index_factory(c.dim, spec, faiss.METRIC_L2)
        keys = self.keys.astype(np.float32)
        if not index.is_trained:  # k-means on a bounded sample keeps 1M-key builds to minutes on 2 cores
            sample = np.random.default_rng(0).choice(n, min(n, IVF_TRAIN_PER_LIST * nlist), replace=False)
            index.train(keys[np.sort(sample)])
        index.add(keys)
        self._tune(index)
        return index

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

        def search(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return faiss.knn(q, keys, k) if brute else self.index.search(q, k, params=params)

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
            self.config.checksums = {f: file_digest(tmp / f) for f in files}
            (tmp / "memory.json").write_text(json.dumps(asdict(self.config), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Memory:
        """Read a memory directory: only the files its memory.json lists, each verified
        against its recorded checksum."""
        path = Path(path)
        recover(path)
        config = _read_config(path / "memory.json")
        verify_files(path, config.checksums, "rebuild the memory")
        keys_file = path / "keys.safetensors"
        arrays = read_safetensors(keys_file, ("keys", "values"))
        keys, values = arrays["keys"], arrays["values"]
        records = _read_records(path / "records.jsonl")
        mem = cls(keys, values, records, config.labels, config.fingerprint, config.index, config.fp16)
        mem.config = config
        if "index.faiss" in config.checksums:
            import faiss

            try:
                mem._index = faiss.read_index(str(path / "index.faiss"))
            except RuntimeError as e:
                raise DataError(f"cannot read FAISS index ({e})", path=path / "index.faiss") from e
            mem._tune(mem._index)
        return mem


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
    checksums = raw.get("checksums")
    if not isinstance(checksums, dict) or not set(REQUIRED_FILES) <= set(checksums):
        raise DataError(f"lists no checksums for {', '.join(REQUIRED_FILES)}: files cannot be verified; "
                        "rebuild the memory", path=path, field="checksums")
    try:
        return MemoryConfig(**raw)
    except TypeError as e:
        raise DataError(f"not a knnie memory config ({e})", path=path) from e


def _read_records(path: Path) -> list[dict[str, Any]]:
    records = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DataError(f"malformed JSON ({e.msg})", path=path, line=lineno) from e
    return records
