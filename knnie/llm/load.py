"""`load_llm(spec)`: the backend a command-line `--llm` value names."""

from __future__ import annotations

from pathlib import Path

from knnie.llm.base import LLM, LLMError
from knnie.llm.http import HttpLLM
from knnie.llm.local import LocalLLM, smollm2_file, split_model_file

SPECS = "'local' (Qwen2.5-Coder-0.5B-Instruct), 'smollm2' (SmolLM2-135M-Instruct), a .gguf path or an http(s) URL"


def load_llm(spec: str = "local", threads: int | None = None, model: str | None = None) -> LLM:
    """'local': the bundled Qwen GGUF; 'smollm2': the tests' small model; a path to a .gguf file; or the base
    URL of an OpenAI-compatible server (`model`: the model it serves). `threads`: CPU threads of a local model."""
    if spec.startswith(("http://", "https://")):
        return HttpLLM(spec, model=model)
    if spec == "local":
        return LocalLLM(split_model_file(), threads)
    if spec == "smollm2":
        return LocalLLM(smollm2_file(), threads)
    if spec.endswith(".gguf") or Path(spec).is_file():
        return LocalLLM(spec, threads)
    raise LLMError(f"unknown LLM '{spec}': expected {SPECS}")
