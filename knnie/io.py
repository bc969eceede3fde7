"""Crash-safe writes: a crash, a kill or a bad input never leaves a half-written artefact.

Every write goes to a temporary sibling that is flushed to disk (`fsync`) and then renamed
into place. Writers of one path are serialised by a lock file beside it (`.NAME.lock`); a
second writer waits for the first, then gets a clear error if it waited too long.

A directory is replaced in two renames (old → `.NAME.old`, new → NAME). A crash between
them leaves the artefact at `.NAME.old`; `recover` (called by every loader) and the next
write put it back, and the next write also removes the temporary debris of killed writers.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from knnie.errors import DataError, KnnieError

log = logging.getLogger(__name__)
LOCK_WAIT = 60.0  # seconds a writer waits for another writer of the same path


@contextmanager
def locked(path: str | Path, wait: float = LOCK_WAIT) -> Iterator[None]:
    """Hold the write lock of `path` (the file `.NAME.lock` beside it).

    The lock file is removed on release; a waiter that then holds a lock on the removed file
    notices (its inode is no longer the one at the path) and tries again."""
    path = Path(path)
    lock = path.with_name(f".{path.name}.lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
        try:
            _flock(fd, lock, path, deadline)
            with contextlib.suppress(FileNotFoundError):
                if os.fstat(fd).st_ino == os.stat(lock).st_ino:
                    break  # the lock file we hold is still the one at the path
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)
        os.close(fd)


def _flock(fd: int, lock: Path, path: Path, deadline: float) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                holder = lock.read_text(errors="replace").strip() if lock.exists() else "?"
                raise KnnieError(
                    f"{path} is being written by another knnie process (pid {holder or '?'}); "
                    "try again when it has finished") from None
            time.sleep(0.05)


def _fsync_tree(root: Path) -> None:
    """Flush every file and directory under `root` (and `root` itself) to disk."""
    for p in [root] if root.is_file() else [*root.rglob("*"), root]:
        _fsync(p)


def _fsync(path: Path) -> None:
    """Flush one file or directory to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _clean_debris(path: Path) -> None:
    """Remove what killed writers of `path` left behind (call with the lock held)."""
    for debris in path.parent.glob(f".{path.name}.*.tmp"):
        _remove(debris)


def _old(path: Path) -> Path:
    return path.with_name(f".{path.name}.old")


def _put_back(path: Path) -> bool:
    """With the lock held: move an artefact a crash left at `.NAME.old` back to `path`."""
    if path.exists() or not _old(path).exists():
        return False
    os.replace(_old(path), path)
    _fsync(path.parent)
    return True


def recover(path: str | Path) -> None:
    """Put back an artefact that a crash left at `.NAME.old` between the two renames of a save."""
    path = Path(path)
    if path.exists() or not _old(path).exists():
        return
    with locked(path):
        if _put_back(path):
            log.warning("%s: restored from an interrupted save", path)


@contextmanager
def atomic_path(path: str | Path, lock: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it replaces `path` in one rename. `lock`: False
    when the caller already holds the write lock of `path` (to decide, under it, whether to write)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path) if lock else contextlib.nullcontext():
        _clean_debris(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            yield Path(tmp)
            _fsync_tree(Path(tmp))
            os.replace(tmp, path)
            _fsync(path.parent)
        finally:
            _remove(Path(tmp))


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: str | Path, rows: Iterator[dict] | list[dict]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield a fresh temporary directory; on success it takes the place of `path`.

    An existing `path` is moved aside first and removed only once the new one is in place,
    so an error while writing leaves the old artefact untouched, and a crash between the
    two renames is undone by `recover`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path):
        _put_back(path)  # an earlier save crashed between its renames
        _remove(_old(path))
        _clean_debris(path)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        try:
            yield tmp
            _fsync_tree(tmp)
            if path.exists():
                os.replace(path, _old(path))
            os.replace(tmp, path)
            _fsync(path.parent)
            _remove(_old(path))
        finally:
            _remove(tmp)


def remove_dir(path: str | Path) -> None:
    """Delete an artefact directory in one rename (to debris that loaders ignore and the next
    write clears), so that a crash never leaves it half deleted."""
    path = Path(path)
    with locked(path):
        _remove(_old(path))
        if path.exists():
            debris = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
            os.replace(path, debris)
            _fsync(path.parent)
            _remove(debris)


def copy_into(source: Path, target: Path) -> None:
    """Copy a file or a tree, hard-linking files where possible (artefact files are never
    modified in place, only replaced, so a link is as safe as a copy and costs nothing)."""

    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, copy_function=link)
    else:
        link(str(source), str(target))


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """Read a JSON file; a missing, unreadable or malformed file becomes a DataError naming it."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{what} expected, found a directory", path=path)
    if not path.exists():
        raise DataError(f"{what} not found", path=path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise DataError(f"{what} is not UTF-8 (byte {e.start}): truncated or corrupt", path=path) from e
    except json.JSONDecodeError as e:
        raise DataError(f"malformed JSON ({e.msg}, column {e.colno})", path=path, line=e.lineno) from e


def file_digest(path: Path) -> str:
    """The sha256 of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_files(root: Path, checksums: dict[str, str], remedy: str) -> None:
    """Check every listed file of an artefact directory against its recorded sha256; a missing,
    truncated or corrupt file is a DataError naming it (`remedy` says what to do)."""
    for name, digest in checksums.items():
        f = root / name
        if not f.is_file():
            raise DataError(f"file missing; {remedy}", path=f)
        if file_digest(f) != digest:
            raise DataError(f"file is truncated or corrupt (checksum mismatch); {remedy}", path=f)


def read_safetensors(path: Path, names: tuple[str, ...] = (), framework: str = "numpy") -> dict[str, Any]:
    """Tensors of a safetensors file (numpy arrays, or torch tensors); an unreadable file or a
    missing tensor is a DataError naming the file."""
    from safetensors import SafetensorError

    if framework == "numpy":
        from safetensors.numpy import load_file
    else:
        from safetensors.torch import load_file
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as e:
        raise DataError(f"cannot read tensors ({e})", path=path) from e
    missing = [n for n in names if n not in tensors]
    if missing:
        raise DataError(f"tensors {missing} missing", path=path)
    return tensors


SAFETENSORS_DTYPES = {"F16": np.float16, "F32": np.float32, "I32": np.int32, "I64": np.int64}


def mmap_safetensors(path: Path, names: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """The tensors of a safetensors file as read-only memory maps: opening costs no RAM and no
    reading, pages come from disk as they are touched. A header that does not fit the file's
    size (a truncated copy) or a missing tensor is a DataError naming the file."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = int.from_bytes(f.read(8), "little")
            header = json.loads(f.read(head)) if 0 < head <= size - 8 else None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"cannot read tensors ({e})", path=path) from e
    if not isinstance(header, dict):
        raise DataError("not a safetensors file (bad header)", path=path)
    header.pop("__metadata__", None)
    tensors = {}
    for name, spec in header.items():
        start, stop = spec["data_offsets"]
        dtype = np.dtype(SAFETENSORS_DTYPES.get(spec["dtype"], np.uint8))
        shape = tuple(spec["shape"])
        if spec["dtype"] not in SAFETENSORS_DTYPES or stop - start != dtype.itemsize * math.prod(shape):
            raise DataError(f"tensor '{name}' cannot be mapped ({spec['dtype']} {shape})", path=path)
        if 8 + head + stop > size:
            raise DataError(f"file is truncated: tensor '{name}' ends at byte {8 + head + stop} of {size}", path=path)
        tensors[name] = (np.memmap(path, dtype=dtype, mode="r", offset=8 + head + start, shape=shape)
                         if math.prod(shape) else np.zeros(shape, dtype))
    missing = [n for n in names if n not in tensors]
    if missing:
        raise DataError(f"tensors {missing} missing", path=path)
    return tensors


class SafetensorsWriter:
    """A safetensors file written tensor by tensor, each in chunks, so that tensors larger than RAM
    can be stored; the sha256 of what was written is computed on the way (`digest`). Shapes and
    dtypes are declared up front, as the format's header precedes the data."""

    def __init__(self, path: Path, specs: dict[str, tuple[np.dtype, tuple[int, ...]]]) -> None:
        codes = {np.dtype(v): k for k, v in SAFETENSORS_DTYPES.items()}
        header, offset = {}, 0
        for name, (dtype, shape) in specs.items():
            size = np.dtype(dtype).itemsize * math.prod(shape)
            header[name] = {"dtype": codes[np.dtype(dtype)], "shape": list(shape),
                            "data_offsets": [offset, offset + size]}
            offset += size
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)  # the data starts 8-byte aligned, as safetensors writes it
        self.specs, self.path, self.sha = specs, path, hashlib.sha256()
        self._file = open(path, "wb")  # noqa: SIM115 -- closed by close()
        self._written = dict.fromkeys(specs, 0)
        self._put(len(raw).to_bytes(8, "little") + raw)

    def _put(self, data: bytes | memoryview) -> None:
        self._file.write(data)
        self.sha.update(data)

    def write(self, name: str, chunk: np.ndarray) -> None:
        """Append rows of tensor `name`; tensors must be written whole, in the declared order."""
        dtype, shape = self.specs[name]
        earlier = list(self.specs)[: list(self.specs).index(name)]
        if any(self._written[n] != math.prod(self.specs[n][1]) for n in earlier):
            raise KnnieError(f"{self.path}: tensor '{name}' written before the tensors declared ahead of it")
        chunk = np.ascontiguousarray(chunk, dtype=dtype)
        self._written[name] += chunk.size
        if self._written[name] > math.prod(shape):
            raise KnnieError(f"{self.path}: more values written to '{name}' than its shape {shape} holds")
        self._put(memoryview(chunk).cast("B"))

    def close(self) -> str:
        """Finish the file (every tensor must be complete); returns its sha256."""
        short = [n for n, (_, shape) in self.specs.items() if self._written[n] != math.prod(shape)]
        self._file.close()
        if short:
            raise KnnieError(f"{self.path}: tensors {short} were not written whole")
        return self.sha.hexdigest()
