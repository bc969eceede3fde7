"""Where the encoder runs: one name ("auto", "cpu", "cuda", "cuda:N") resolved once, and the
batches moved there once each. FAISS search stays on the CPU: memories hold numpy arrays."""

from __future__ import annotations

import torch

from knnie.errors import KnnieError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """The torch device for `name`: "auto" is the first CUDA GPU if torch sees one, else the CPU.
    A GPU that is asked for but missing is an error, never a silent fall back to the CPU."""
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    kind, _, number = name.partition(":")
    if kind != "cuda" or (number and not number.isdigit()):
        raise KnnieError(f"unknown device '{name}'; choose one of {', '.join(DEVICES)} (or cuda:N for GPU N)")
    if not torch.cuda.is_available():
        raise KnnieError(f"device '{name}' was asked for, but torch sees no CUDA GPU here (no GPU, no driver, "
                         "or a CPU-only torch); use 'cpu' or 'auto'")
    if number and int(number) >= torch.cuda.device_count():
        raise KnnieError(f"device '{name}' was asked for, but torch sees {torch.cuda.device_count()} CUDA GPU(s), "
                         f"numbered from 0")
    return torch.device(name)


def to_device(tensors: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """A batch's tensors on `device` (no copy when they are there already)."""
    return {name: t.to(device) for name, t in tensors.items()}
