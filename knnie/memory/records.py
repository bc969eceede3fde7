"""A memory's records (the example behind each key) read from `records.jsonl` only when asked
for: showing the neighbours of a prediction reads those few lines, never the whole file."""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

import numpy as np

from knnie.errors import DataError


def line_offsets(path: Path) -> np.ndarray:
    """The byte offset of every line of a JSONL file, and its size last (n + 1 values): the
    index of memories saved before records were indexed."""
    offsets = [0]
    with open(path, "rb") as f:
        for line in f:
            offsets.append(offsets[-1] + len(line))
    return np.array(offsets, dtype=np.int64)


class LazyRecords(Sequence[dict[str, Any]]):
    """The records of `path`, line i read at byte offsets[i] when record i is asked for.

    The file stays open from the moment the memory is loaded, so a later save that replaces the
    memory directory (a live memory growing in another process) cannot shift what these offsets
    point to: they keep reading the file that was loaded."""

    def __init__(self, path: Path, offsets: np.ndarray) -> None:
        self.path = path
        self.offsets = offsets
        self._fd = os.open(path, os.O_RDONLY)
        weakref.finalize(self, os.close, self._fd)
        size = os.fstat(self._fd).st_size
        if len(offsets) < 1 or offsets[0] != 0 or int(offsets[-1]) != size or (np.diff(offsets) <= 0).any():
            raise DataError(f"the record index does not fit the file ({size} bytes): truncated or replaced; "
                            "rebuild the memory", path=path)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and len(other) == len(self) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment] -- mutable-looking sequence, like list

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"record {i} of {len(self)}")
        start, stop = int(self.offsets[i]), int(self.offsets[i + 1])
        return self._parse(os.pread(self._fd, stop - start, start), i)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Every record in order, read in blocks from the loaded file."""
        pos, size, rest, i = 0, int(self.offsets[-1]), b"", 0
        while pos < size:
            block = os.pread(self._fd, min(1 << 22, size - pos), pos)
            pos += len(block)
            *lines, rest = (rest + block).split(b"\n")
            for line in lines:
                yield self._parse(line, i)
                i += 1
        if rest:
            yield self._parse(rest, i)

    def _parse(self, line: bytes, i: int) -> dict[str, Any]:
        try:
            return json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise DataError(f"record {i} is not JSON ({e})", path=self.path, line=i + 1) from e
