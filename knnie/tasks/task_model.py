"""`TaskModel`: what a front class trains and runs — a representer and, unless the model is
headless (it predicts from memories alone), a linear classifier over its vectors."""

from __future__ import annotations

import torch
from torch import nn

from knnie.encoders.representer import Representer


class TaskModel(nn.Module):
    """Representer + dropout + linear layer (`classifier`, None when headless)."""

    def __init__(self, representer: Representer, n_labels: int | None, dropout: float = 0.1) -> None:
        super().__init__()
        self.representer = representer
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(representer.dim, n_labels) if n_labels is not None else None

    @property
    def encoder(self) -> nn.Module:
        """The encoder inside the representer (trained at the encoder's learning rate)."""
        return self.representer.encoder

    def forward(self, **batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Vectors and, with a head, logits over them (dropout applies in training)."""
        x = self.representer(**batch)
        return x, self.classifier(self.dropout(x)) if self.classifier is not None else None
