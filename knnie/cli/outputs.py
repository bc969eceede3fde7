"""Checks on the file a command will write, made before any work: a bad --output must not
fail after the model has been loaded and every example predicted."""

from __future__ import annotations

import os
from pathlib import Path

from knnie.errors import KnnieError


def check_output(path: Path | None) -> None:
    """Refuse an output path that is a directory, or whose parent cannot be made or written
    (missing parent directories are made when the file is written)."""
    if path is None:
        return
    if path.is_dir():
        raise KnnieError(f"output {path} is a directory; give a file path")
    parent = path.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise KnnieError(f"cannot write {path}: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise KnnieError(f"cannot write {path}: the directory {parent} is not writable")
