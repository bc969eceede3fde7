"""Word encoders for token classification: each maps a word to sub-token ids and a window
of sub-tokens to hidden states; a word is represented by its FIRST sub-token.

* `HFWordEncoder`: any Hugging Face encoder (the packaged MiniLM by default).
* `CharBiLSTMEncoder`: a small BiLSTM over character embeddings, trained from scratch,
  whose vocabulary comes from the training data — kNN-NER for languages without a
  pretrained model (one character is one sub-token).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import torch
from torch import nn

from knnie.encoders.loading import load_encoder
from knnie.errors import DataError, KnnieError

CHAR_BILSTM = "char-bilstm"
CHAR_CONFIG = "char_bilstm.json"


class HFWordEncoder(nn.Module):
    """A Hugging Face encoder with its tokenizer; sub-tokens of each word are cached."""

    kind = "hf"

    def __init__(self, model: nn.Module, tokenizer, max_length: int = 256) -> None:
        super().__init__()
        self.model, self.tokenizer = model, tokenizer
        limits = (max_length, tokenizer.model_max_length, getattr(model.config, "max_position_embeddings", max_length))
        self.max_length = min(limits)
        self.hidden_size = model.config.hidden_size
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.unk_id = tokenizer.unk_token_id if tokenizer.unk_token_id is not None else self.pad_id
        ids = tokenizer("a")["input_ids"]
        bare = tokenizer("a", add_special_tokens=False)["input_ids"]
        cut = next(i for i in range(len(ids)) if ids[i : i + len(bare)] == bare)
        self.prefix, self.suffix = ids[:cut], ids[cut + len(bare) :]
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def load(cls, name_or_path: str | Path, max_length: int = 256) -> HFWordEncoder:
        model, tokenizer = load_encoder(name_or_path)
        return cls(model, tokenizer, max_length)

    def pieces(self, words: list[str]) -> list[list[int]]:
        """Sub-token ids of each word; a word the tokenizer drops becomes [UNK], never nothing."""
        new = list({w for w in words if w not in self._cache})
        if new:
            for w, ids in zip(new, self.tokenizer(new, add_special_tokens=False)["input_ids"]):
                self._cache[w] = ids or [self.unk_id]
        return [self._cache[w] for w in words]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def save(self, path: Path) -> None:
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)


class CharBiLSTMEncoder(nn.Module):
    """Character embeddings → one BiLSTM layer; the vocabulary is saved as JSON."""

    kind = CHAR_BILSTM
    PAD, UNK = 0, 1

    def __init__(self, vocab: list[str], embed_dim: int = 128, hidden: int = 128, max_length: int = 512) -> None:
        super().__init__()
        self.vocab, self.embed_dim, self.hidden = list(vocab), embed_dim, hidden
        self.index = {c: i + 2 for i, c in enumerate(self.vocab)}
        self.embeddings = nn.Embedding(len(self.vocab) + 2, embed_dim, padding_idx=self.PAD)
        self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.max_length, self.hidden_size = max_length, 2 * hidden
        self.pad_id, self.prefix, self.suffix = self.PAD, [], []

    @classmethod
    def from_sentences(cls, tokens: list[list[str]], min_count: int = 1, **kwargs) -> CharBiLSTMEncoder:
        """A fresh encoder whose vocabulary is every character seen `min_count` times."""
        counts = Counter(c for sentence in tokens for word in sentence for c in word)
        vocab = sorted((c for c, n in counts.items() if n >= min_count), key=lambda c: (-counts[c], c))
        return cls(vocab, **kwargs)

    @classmethod
    def load(cls, path: Path) -> CharBiLSTMEncoder:
        from safetensors.torch import load_file

        from knnie.io import read_json

        config = read_json(path / CHAR_CONFIG, "char-bilstm config")
        try:
            encoder = cls(**config)
        except TypeError as e:
            raise DataError(f"not a char-bilstm config ({e})", path=path / CHAR_CONFIG) from e
        weights = path / "model.safetensors"
        if not weights.is_file():
            raise DataError("char-bilstm weights missing", path=weights)
        try:
            encoder.load_state_dict(load_file(str(weights)))
        except RuntimeError as e:
            raise KnnieError(f"{weights}: weights do not fit {CHAR_CONFIG} ({e})") from e
        return encoder

    def pieces(self, words: list[str]) -> list[list[int]]:
        return [[self.index.get(c, self.UNK) for c in w] or [self.UNK] for w in words]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        lengths = attention_mask.sum(1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(self.embeddings(input_ids), lengths, batch_first=True,
                                                   enforce_sorted=False)
        hidden, _ = self.lstm(packed)
        return nn.utils.rnn.pad_packed_sequence(hidden, batch_first=True, total_length=input_ids.size(1))[0]

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        from knnie.io import write_json

        path.mkdir(parents=True, exist_ok=True)
        write_json(path / CHAR_CONFIG, {"vocab": self.vocab, "embed_dim": self.embed_dim, "hidden": self.hidden,
                                        "max_length": self.max_length})
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path / "model.safetensors"))


WordEncoder = HFWordEncoder | CharBiLSTMEncoder


def load_word_encoder(kind: str, path: str | Path, max_length: int = 256) -> WordEncoder:
    """The saved encoder of a model directory (or, for "hf", any Hugging Face model)."""
    if kind == CHAR_BILSTM:
        return CharBiLSTMEncoder.load(Path(path))
    return HFWordEncoder.load(path, max_length)
