"""Named encoders assembled from split packages: joined in order, verified, unpacked atomically."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from knnie import KnnieError
from knnie.encoders import named
from knnie.encoders.loading import resolve_encoder


def split_zip(tmp_path: Path, n_parts: int = 3) -> tuple[named.SplitEncoder, list[Path]]:
    """A tiny model directory zipped and cut into parts, as the PyPI packages ship it."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("tiny/config.json", '{"model_type": "bert"}')
        z.writestr("tiny/vocab.txt", "a\nb\n" * 100)
    data = buffer.getvalue()
    cut = len(data) // n_parts + 1
    parts = []
    for i in range(n_parts):
        part = tmp_path / f"tiny.zip.{i + 1:03d}"
        part.write_bytes(data[i * cut : (i + 1) * cut])
        parts.append(part)
    spec = named.SplitEncoder(tuple(f"pkg-{i}" for i in range(n_parts)), len(data), hashlib.sha256(data).hexdigest(),
                              "tiny")
    return spec, parts


def test_parts_are_joined_verified_and_unpacked(tmp_path):
    spec, parts = split_zip(tmp_path)
    named._assemble(spec, parts, tmp_path / "cache" / "tiny")
    assert (tmp_path / "cache" / "tiny" / "config.json").read_text() == '{"model_type": "bert"}'
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["tiny"]  # no temporary leftovers


def test_parts_in_the_wrong_order_are_refused_and_nothing_is_left(tmp_path):
    spec, parts = split_zip(tmp_path)
    with pytest.raises(KnnieError, match="reinstall the part packages"):
        named._assemble(spec, parts[::-1], tmp_path / "cache" / "tiny")
    assert list((tmp_path / "cache").iterdir()) == []


def test_named_encoder_without_its_packages_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("KNNIE_CACHE", str(tmp_path))
    monkeypatch.setitem(named.NAMED, "tiny-split", named.SplitEncoder(("no-such-package-part-001",), 1, "0", "tiny"))
    with pytest.raises(KnnieError, match="make mpnet"):
        resolve_encoder("tiny-split")


def test_unknown_encoder_names_the_known_ones():
    with pytest.raises(KnnieError, match="all-mpnet-base-v2"):
        resolve_encoder("no-such-encoder")
