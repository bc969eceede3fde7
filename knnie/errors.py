"""Errors users see: each names where the problem is (file, line/record, field)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class KnnieError(Exception):
    """Base class for every error knnie raises on purpose; the CLI prints it and exits 1."""


class DataError(KnnieError):
    """Bad input data, located as precisely as we can: file, line (1-based) and field."""

    def __init__(
        self, message: str, *, path: str | Path | None = None, line: int | str | None = None,
        field: str | None = None,
    ) -> None:
        self.message, self.path, self.line, self.field = message, path, line, field
        where = ":".join(str(p) for p in (path, line) if p is not None)
        if field:
            where = f"{where} field '{field}'" if where else f"field '{field}'"
        super().__init__(f"{where}: {message}" if where else message)


class NotFoundError(KnnieError):
    """A memory or a source of memory entries asked for by name that is not there."""


class IncompatibleArtefactError(KnnieError):
    """A memory or checkpoint built by another model or label set."""


def check_count(value: Any, least: int, name: str) -> None:
    """Refuse a count below `least` (or not an integer) before any work: a negative batch size
    or number of neighbours would otherwise give silently wrong results."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
        raise KnnieError(f"{name} must be an integer ≥ {least}, not {value!r}")
