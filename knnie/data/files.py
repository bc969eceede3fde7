"""Reading users' input files the same way in every reader: UTF-8 text (a leading BOM accepted),
line ends made '\\n' as Python's text mode makes them, JSON values parsed line by line; every
problem is a `DataError` naming the file and the line."""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from knnie.errors import DataError


class NotUTF8Error(DataError):
    """A file that is not UTF-8 text; `reason` (no file name in it) is for reports that skip the file."""

    def __init__(self, path: Path, line: int, byte: int) -> None:
        super().__init__(f"not UTF-8 (byte 0x{byte:02x})", path=path, line=line)
        self.reason = f"not UTF-8 (byte 0x{byte:02x} at line {line})"


def read_text(path: str | Path, what: str = "file") -> str:
    """The text of a UTF-8 file with '\\n' line ends; a directory, a missing file or bytes that are
    not UTF-8 are a `DataError`."""
    path = Path(path)
    if path.is_dir():
        raise DataError("is a directory, expected a file", path=path)
    if not path.is_file():
        raise DataError(f"{what} not found", path=path)
    data = path.read_bytes().removeprefix(codecs.BOM_UTF8)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = _unix_newlines(data[: e.start].decode("utf-8")).count("\n") + 1
        raise NotUTF8Error(path, line, data[e.start]) from e
    return _unix_newlines(text)


def _unix_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def numbered_lines(text: str) -> Iterator[tuple[int, str]]:
    """(1-based line number, line) of a text from `read_text`, split on '\\n' only (not as
    `str.splitlines` splits): a U+2028 inside a JSON string or a form feed does not end a line."""
    yield from enumerate(text.split("\n"), 1)


def parse_json(text: str, path: Path, line: int | None = None) -> Any:
    """A JSON value; malformed (or absurdly nested) JSON is a `DataError` at `line`."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"malformed JSON ({e.msg}, column {e.colno})", path=path, line=line) from e
    except (ValueError, RecursionError) as e:  # a number of over 4,300 digits; arrays nested thousands deep
        raise DataError(f"malformed JSON ({type(e).__name__}: {str(e)[:80]})", path=path, line=line) from e
