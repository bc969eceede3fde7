"""The model directory on disk: what is in it, how it is checked, and what a save may replace.

    knnie_config.json   the task's config, its format version and the sha256 of every other model file
    encoder/            encoder weights, tokenizer and their configs
    cross_encoder/      (zero-shot models) the cross-encoder, likewise
    head.safetensors    the linear classifier (none in a headless model: its config says "head": false)
    memories/<name>/    one directory per memory, with checksums of its own (`knnie.memory.memory`)

Every model file is verified on load, so a missing tokenizer file or truncated weights are an
error naming the file instead of silently wrong predictions. A save never deletes what is not
knnie's: a non-empty directory that is not a model is refused unless the caller says overwrite;
replacing a model keeps the user's extra files and the memories its weights can still read.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from knnie.errors import DataError, IncompatibleArtefactError, KnnieError
from knnie.io import copy_into, file_digest, read_json, recover, verify_files, write_json
from knnie.memory.memory import check_name

log = logging.getLogger(__name__)

CONFIG_FILE = "knnie_config.json"
HEAD_FILE = "head.safetensors"
MEMORIES = "memories"
ENCODERS = ("encoder", "cross_encoder")  # every model has the first; a zero-shot model also the second
MODEL_FILES = (*ENCODERS, HEAD_FILE, CONFIG_FILE, MEMORIES)  # what a save writes; anything else is the user's
FORMAT_VERSION = 2  # 2: format_version and checksums recorded


def is_model(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file()


def check_target(path: str | Path, overwrite: bool = False) -> Path:
    """Refuse to save a model where it would destroy something that is not a knnie model."""
    path = Path(path)
    recover(path)
    if path.exists() and not path.is_dir():
        raise KnnieError(f"{path} is a file; a model is saved as a directory")
    if path.is_dir() and not is_model(path) and any(path.iterdir()) and not overwrite:
        raise KnnieError(f"{path} is a non-empty directory that is not a knnie model; save elsewhere, or pass "
                         "--overwrite (overwrite=True) to replace everything in it")
    return path


def memory_dir(model_dir: str | Path, name: str) -> Path:
    """Where memory `name` of a model lives; the name must be a plain name."""
    return Path(model_dir) / MEMORIES / check_name(name)


def model_checksums(root: Path) -> dict[str, str]:
    """sha256 of every model file written so far under `root` (relative POSIX paths)."""
    return {f.relative_to(root).as_posix(): file_digest(f) for f in sorted(root.rglob("*")) if f.is_file()}


def read_config(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """The task config fields and the checksums of a model directory, after verifying its files."""
    recover(path)
    config_path = path / CONFIG_FILE
    raw = read_json(config_path, "knnie model config")
    if not isinstance(raw, dict):
        raise DataError("not a knnie model config (not a JSON object)", path=config_path)
    version = raw.pop("format_version", None)
    checksums = raw.pop("checksums", None)
    if not isinstance(version, int) or version < 1:
        raise DataError("no format_version: not written by this knnie; retrain or re-save the model",
                        path=config_path, field="format_version")
    if version > FORMAT_VERSION:
        raise KnnieError(f"{config_path}: model format {version} was made by a newer knnie (this one reads up "
                         f"to {FORMAT_VERSION}); upgrade knnie")
    headless = raw.get("head") is False
    if not isinstance(checksums, dict) or not (headless or HEAD_FILE in checksums):
        raise DataError("lists no checksums of the model files, so they cannot be verified; re-save the model",
                        path=config_path, field="checksums")
    if headless and HEAD_FILE in checksums:
        raise DataError(f"says the model has no classifier head, but its checksums list {HEAD_FILE}: the directory "
                        "mixes files of different models", path=config_path, field="head")
    verify_files(path, checksums, "the model directory is damaged: re-save or retrain the model")
    foreign = [f for enc in ENCODERS for f in sorted((path / enc).rglob("*"))
               if f.is_file() and not f.name.startswith(".") and f.relative_to(path).as_posix() not in checksums]
    if foreign:
        raise DataError("file was not written with this model (not in its checksums); remove it", path=foreign[0])
    return raw, checksums


def write_config(path: str | Path, config: Any, checksums: dict[str, str] | None) -> None:
    """Write a task config (a dataclass) as knnie_config.json in `path`, atomically, with the format
    version and the checksums of the model files beside it (known once the model was saved)."""
    if checksums is None:
        raise KnnieError("this model was never saved: use save_pretrained first")
    write_json(Path(path) / CONFIG_FILE, {**asdict(config), "format_version": FORMAT_VERSION, "checksums": checksums})


def check_fingerprint(path: Path, found: str, saved: str) -> None:
    """Refuse a directory whose weights do not hash to the fingerprint its config recorded."""
    if saved and found != saved:
        raise IncompatibleArtefactError(
            f"{path}: the weights' fingerprint {found} differs from the one in {CONFIG_FILE} ({saved}); "
            "the directory mixes files of different models")


def carried_over(path: Path, fingerprint: str, saving: set[str]) -> list[Path]:
    """What a save into model directory `path` keeps: the user's own files, and memories that
    are not being saved but whose keys these weights made. Memories of other weights cannot be
    read any more and are dropped, with a warning naming them."""
    if not is_model(path):
        return []
    kept = [p for p in sorted(path.iterdir()) if p.name not in MODEL_FILES and not p.name.startswith(".")]
    dropped = []
    for mem in sorted((path / MEMORIES).iterdir()) if (path / MEMORIES).is_dir() else []:
        if mem.name.startswith(".") or mem.name in saving:
            continue
        try:
            made_by = read_json(mem / "memory.json", "memory config").get("fingerprint")
        except (DataError, AttributeError):
            made_by = None
        (kept if made_by == fingerprint else dropped).append(mem)
    if dropped:
        log.warning("%s: replacing the model there; its memories %s were built by the old weights and are removed "
                    "(rebuild them)", path, ", ".join(repr(m.name) for m in dropped))
    return kept


def carry(entries: list[Path], source: Path, target: Path) -> None:
    """Copy the kept entries of the old directory `source` into the new one at `target`."""
    for entry in entries:
        copy_into(entry, target / entry.relative_to(source))
