"""Reading users' input files the same way in every reader: UTF-8 text (a leading BOM accepted),
line ends made '\\n' as Python's text mode makes them, JSON values parsed line by line; every
problem is a `DataError` naming the file and the line."""

from __future__ import annotations

import codecs
import glob
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knnie.errors import DataError, KnnieError


class NotUTF8Error(DataError):
    """A file that is not UTF-8 text; `reason` (no file name in it) is for reports that skip the file."""

    def __init__(self, path: Path, line: int, byte: int) -> None:
        super().__init__(f"not UTF-8 (byte 0x{byte:02x})", path=path, line=line)
        self.reason = f"not UTF-8 (byte 0x{byte:02x} at line {line})"


@dataclass(frozen=True)
class FilePart:
    """Bytes [start, stop) of a file, cut at line starts, whose first line is line `first_line`:
    what one worker of a parallel read reads (`split_file`); errors name the file's own lines."""

    path: str
    start: int
    stop: int
    first_line: int = 1


def read_text(path: str | Path | FilePart, what: str = "file") -> str:
    """The text of a UTF-8 file (or of a part of one) with '\\n' line ends; a directory, a missing
    file or bytes that are not UTF-8 are a `DataError`."""
    part = path if isinstance(path, FilePart) else None
    path = Path(part.path if part else path)
    if path.is_dir():
        raise DataError("is a directory, expected a file", path=path)
    if not path.is_file():
        raise DataError(f"{what} not found", path=path)
    if part is None:
        data = path.read_bytes()
    else:
        with open(path, "rb") as f:
            f.seek(part.start)
            data = f.read(part.stop - part.start)
    data = data.removeprefix(codecs.BOM_UTF8) if part is None or part.start == 0 else data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = _unix_newlines(data[: e.start].decode("utf-8")).count("\n") + (part.first_line if part else 1)
        raise NotUTF8Error(path, line, data[e.start]) from e
    return _unix_newlines(text)


def record_starts(path: str | Path, blocks: bool = False) -> Iterator[tuple[int, int]]:
    """(byte offset, line number) of every record of a file: a non-blank line, or with `blocks` a
    run of non-blank lines (a CoNLL sentence). Lines are counted as `read_text` counts them."""
    pos, lineno, in_block = 0, 1, False
    with open(path, "rb") as f:
        for line in f:
            blank = not line.strip()
            if not blank and not (blocks and in_block):
                yield pos, lineno
            in_block = not blank
            pos += len(line)
            lineno += 1 + line.count(b"\r") - line.count(b"\r\n")  # a lone \r ends a line too


def split_file(path: str | Path, per_part: int, blocks: bool = False) -> list[FilePart]:
    """`path` cut into parts of `per_part` records each (`record_starts`), at record starts."""
    starts = [start for i, start in enumerate(record_starts(path, blocks)) if i % per_part == 0] or [(0, 1)]
    ends = [pos for pos, _ in starts[1:]] + [Path(path).stat().st_size]
    return [FilePart(str(path), pos, end, line) for (pos, line), end in zip([(0, 1), *starts[1:]], ends)]


def _unix_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def numbered_lines(text: str, first: int = 1) -> Iterator[tuple[int, str]]:
    """(line number, line) of a text from `read_text` (whose first line is line `first`), split on
    '\\n' only (not as `str.splitlines` splits): a U+2028 inside a JSON string or a form feed does
    not end a line."""
    yield from enumerate(text.split("\n"), first)


def parse_json(text: str, path: Path, line: int | None = None) -> Any:
    """A JSON value; malformed (or absurdly nested) JSON is a `DataError` at `line`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"malformed JSON ({e.msg}, column {e.colno})", path=path, line=line) from e
    except (ValueError, RecursionError) as e:  # a number of over 4,300 digits; arrays nested thousands deep
        raise DataError(f"malformed JSON ({type(e).__name__}: {str(e)[:80]})", path=path, line=line) from e


def input_files(pattern: str) -> list[Path]:
    """The files a user names as a file, a directory (every file under it, sorted, hidden files
    and folders left out) or a glob pattern ('**' recurses): a corpus, or data in several files."""
    root = Path(pattern)
    if root.is_dir():
        paths = sorted(p for p in root.rglob("*")
                       if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts))
    else:
        paths = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))] or [root]
        paths = [p for p in paths if p.is_file()]
    if not paths:
        raise KnnieError(f"'{pattern}' matches no file")
    return paths
