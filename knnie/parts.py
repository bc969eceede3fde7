"""Artefacts that ship on PyPI cut into parts over several packages (an encoder's zip, an LLM's GGUF):
each part located in its installed package, the parts joined in order into a file of the local cache,
and the whole checked against its size and sha256, so that a wrong, missing or reordered part is an
error and never a silently broken model. Nothing is downloaded at run time."""

from __future__ import annotations

import hashlib
import os
from importlib import metadata
from pathlib import Path

from knnie.errors import KnnieError


def cache_dir(kind: str) -> Path:
    """Where assembled artefacts of one kind ("encoders", "llm") live: under $KNNIE_CACHE, else ~/.cache/knnie."""
    return Path(os.environ.get("KNNIE_CACHE") or Path.home() / ".cache" / "knnie") / kind


def part_file(package: str, marker: str, install: str) -> Path:
    """The one file that `package` installs whose name contains `marker`; `install` says how to install
    the packages when this one is missing."""
    try:
        files = metadata.distribution(package).files or []
    except metadata.PackageNotFoundError:
        raise KnnieError(f"package {package} is not installed: {install}") from None
    found = [f for f in files if marker in f.name]
    if len(found) != 1:
        raise KnnieError(f"package {package} holds {len(found)} files named '*{marker}*', expected 1; reinstall it")
    return Path(found[0].locate())


def join_verified(parts: list[Path], out: Path, size: int, sha256: str, name: str) -> None:
    """Write the parts one after another into `out` and check the whole's size and sha256 (a KnnieError
    naming `name` when they differ; the caller writes `out` as a temporary file and removes it)."""
    digest = hashlib.sha256()
    with open(out, "wb") as f:
        for part in parts:
            with open(part, "rb") as p:
                for chunk in iter(lambda p=p: p.read(1 << 22), b""):
                    digest.update(chunk)
                    f.write(chunk)
    written = out.stat().st_size
    if written != size or digest.hexdigest() != sha256:
        raise KnnieError(f"the joined parts of {name} are {written} bytes with sha256 {digest.hexdigest()}, "
                         f"expected {size} bytes and {sha256}: reinstall the part packages")
