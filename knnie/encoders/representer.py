"""Representers: the one place that turns a batch of examples into vectors, with or without a
classifier head on top (memory keys and queries, few-shot prototypes, description vectors).

* `RelationRepresenter`: tokenizer + encoder + marker scheme → [h(head) ; h(tail)] per example.
* `WordRepresenter`: a word encoder → the state at each word's first sub-token, per word.
* `TextRepresenter`: tokenizer + encoder → mean or learned weighted pooling over a plain text.

Each has `encode(items, batch_size) -> np.ndarray` and a `device`; batches are moved there once
each and the vectors come back to the CPU. Its `representation` string (what is pooled, how) and
its encoder's weights make the fingerprint that memories are checked against.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import numpy as np
import torch
from torch import nn

from knnie.data.schema import RelationExample, TaggedSentence
from knnie.encoders.batching import batch_order, padded
from knnie.encoders.device import to_device
from knnie.encoders.loading import DEFAULT_ENCODER, fingerprint, load_encoder
from knnie.encoders.markers import (
    EncodedBatch,
    EntitiesTooFarApart,
    MarkerScheme,
    encode,
    first_few,
    marker_scheme,
    refusal,
    too_long,
)
from knnie.encoders.words import WordEncoder
from knnie.errors import DataError, KnnieError, check_count
from knnie.io import read_json, read_safetensors, write_json
from knnie.progress import track

log = logging.getLogger(__name__)
T = TypeVar("T")  # an item: RelationExample, TaggedSentence, str
Batch = tuple[list[int], dict[str, torch.Tensor]]  # unit indices, tensors
POOLINGS = ("mean", "weighted")
POOLING_FILE, POOLING_WEIGHTS = "pooling.json", "pooling.safetensors"  # beside a saved TextRepresenter's encoder


class Representer(nn.Module, ABC, Generic[T]):
    """Items → vectors (n, dim). A subclass prepares its units (tokenised examples, windows of
    words), pads them into batches, pools the encoder's states and places each unit's vectors."""

    encoder: nn.Module  # the weights the fingerprint hashes
    dim: int

    @property
    @abstractmethod
    def representation(self) -> str:
        """How vectors are made (what is pooled, how); part of the fingerprint."""

    @abstractmethod
    def prepare(self, items: list[T]) -> tuple[Any, int]:
        """The units batches are made of, and how many vectors the items give."""

    @abstractmethod
    def batches(self, units: Any, batch_size: int, shuffle: bool = False, seed: int = 0,
                buckets: bool = True) -> list[Batch]:
        """Dynamically padded batches of units, grouped by `batch_order`: sorted by length for
        inference, length-bucketed shuffles for training (random ones without `buckets`)."""

    @abstractmethod
    def place(self, out: np.ndarray, units: Any, idx: list[int], rows: np.ndarray) -> None:
        """Write the batch `rows` (one per unit in `idx`) of an output (vectors, probabilities) into `out`."""

    @abstractmethod
    def save(self, path: Path) -> None:
        """Write the encoder (and tokenizer) to `path`."""

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def fingerprint(self) -> str:
        """A hash of the encoder's weights and of `representation`."""
        return fingerprint(self.encoder, self.representation)

    def encode(self, items: list[T], batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        """The vectors of `items` (n, dim), float32, on the CPU."""
        return self.encode_with(items, None, batch_size, show_progress)[0]

    def encode_with(self, items: list[T], head: nn.Linear | None, batch_size: int = 64,
                    show_progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The vectors of `items` and, in the same pass, softmax(head(vector)) (n, classes);
        without a head the probabilities are an (n, 0) array."""
        return self.encode_units(*self.prepare(items), head, batch_size, show_progress)

    @torch.no_grad()
    def encode_units(self, units: Any, n: int, head: nn.Linear | None = None, batch_size: int = 64,
                     show_progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """`encode_with` for units `prepare` made already (a caller that needs them for more than vectors)."""
        check_count(batch_size, 1, "batch_size")
        self.eval()
        vectors = np.zeros((n, self.dim), dtype=np.float32)
        probs = np.zeros((n, head.out_features if head is not None else 0), dtype=np.float64)
        batches = self.batches(units, batch_size)
        for idx, batch in track(batches, "encoding", len(batches), show_progress):
            x = self(**to_device(batch, self.device))
            self.place(vectors, units, idx, x.detach().cpu().numpy())
            if head is not None:
                self.place(probs, units, idx, torch.softmax(head(x).double(), dim=-1).cpu().numpy())
        return vectors, probs


class RelationRepresenter(Representer[RelationExample]):
    """The encoder's states at the two positions the marker scheme reads, concatenated: 2·hidden."""

    def __init__(self, encoder: nn.Module, tokenizer, markers: MarkerScheme, entity_types: list[str],
                 max_length: int) -> None:
        super().__init__()
        self.encoder, self.tokenizer, self.markers = encoder, tokenizer, markers
        self.entity_types, self.max_length = set(entity_types), max_length
        self.dim = 2 * encoder.config.hidden_size

    @classmethod
    def fresh(cls, encoder: str | Path = DEFAULT_ENCODER, markers: str = "typed", entity_types: list[str] = (),
              max_length: int = 256) -> RelationRepresenter:
        """A pretrained encoder whose tokenizer learns the scheme's marker tokens (their embeddings are new)."""
        scheme = marker_scheme(markers)
        base, tokenizer = load_encoder(encoder)
        tokenizer.add_special_tokens({"additional_special_tokens": scheme.tokens(sorted(entity_types))})
        base.resize_token_embeddings(len(tokenizer))
        return cls(base, tokenizer, scheme, entity_types, min(max_length, tokenizer.model_max_length))

    @property
    def representation(self) -> str:
        return self.markers.representation

    def prepare(self, items: list[RelationExample]) -> tuple[EncodedBatch, int]:
        return encode(self.tokenizer, items, self.entity_types, self.max_length, self.markers), len(items)

    def too_long(self, examples: list[RelationExample], refuse: bool = False) -> dict[int, EntitiesTooFarApart]:
        """The examples whose entities alone exceed the encoder's limit, by index; with `refuse`,
        finding any is the error `prepare` raises."""
        found = too_long(self.tokenizer, examples, self.entity_types, self.max_length, self.markers)
        if found and refuse:
            raise refusal(found, examples, self.max_length)
        return found

    def batches(self, units: EncodedBatch, batch_size: int, shuffle: bool = False, seed: int = 0,
                buckets: bool = True) -> list[Batch]:
        return [(idx, self.tensors(units, idx))
                for idx in batch_order([len(ids) for ids in units.input_ids], batch_size, shuffle, seed, buckets)]

    def tensors(self, units: EncodedBatch, idx: list[int]) -> dict[str, torch.Tensor]:
        """The padded inputs of the units `idx`, in that order: one batch (`batches` picks the groups; a
        caller with its own grouping, such as a sampler of relations, picks them itself)."""
        ids, mask = padded([units.input_ids[i] for i in idx], self.tokenizer.pad_token_id)
        return {"input_ids": ids, "attention_mask": mask, "head_pos": torch.tensor([units.head_pos[i] for i in idx]),
                "tail_pos": torch.tensor([units.tail_pos[i] for i in idx])}

    def forward(self, input_ids, attention_mask, head_pos, tail_pos) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        rows = torch.arange(hidden.size(0), device=hidden.device)
        return torch.cat([hidden[rows, head_pos], hidden[rows, tail_pos]], dim=-1)

    def place(self, out: np.ndarray, units: EncodedBatch, idx: list[int], rows: np.ndarray) -> None:
        out[idx] = rows

    def save(self, path: Path) -> None:
        self.encoder.save_pretrained(path)
        self.tokenizer.save_pretrained(path)


@dataclass
class Window:
    """Sub-token ids of a run of consecutive words of one sentence that fits the encoder."""

    sentence: int
    first_word: int
    input_ids: list[int]
    word_pos: list[int]  # position of each word's first sub-token
    at: int  # the row of its first word among the words of all the sentences encoded together


class WordRepresenter(Representer[TaggedSentence]):
    """A word encoder's state at each word's first sub-token; long sentences are split into windows."""

    representation = "ner: encoder state at each word's first sub-token"

    def __init__(self, encoder: WordEncoder) -> None:
        super().__init__()
        self.encoder, self.dim = encoder, encoder.hidden_size

    def prepare(self, items: list[TaggedSentence]) -> tuple[list[Window], int]:
        return self.windows(items), sum(len(s.tokens) for s in items)

    def windows(self, sentences: list[TaggedSentence], warn: bool = True) -> list[Window]:
        """Each sentence as one window of sub-tokens, or several when it is longer than the
        encoder's limit (one warning for all such sentences, unless not `warn`); no word is ever dropped."""
        enc = self.encoder
        budget = enc.max_length - len(enc.prefix) - len(enc.suffix)
        out, split, at = [], [], 0
        for si, s in enumerate(sentences):
            if not s.tokens:
                raise DataError("empty sentence", path=s.source, line=s.line(), field="tokens")
            first, ids, pos, count = 0, [], [], 0
            for wi, pieces in enumerate(enc.pieces(s.tokens)):
                pieces = pieces[:budget]  # a word longer than the limit keeps its first pieces
                if len(ids) + len(pieces) > budget:
                    out.append(Window(si, first, enc.prefix + ids + enc.suffix, pos, at + first))
                    first, ids, pos, count = wi, [], [], count + 1
                pos.append(len(enc.prefix) + len(ids))
                ids += pieces
            out.append(Window(si, first, enc.prefix + ids + enc.suffix, pos, at + first))
            at += len(s.tokens)
            if count:
                where = ":".join(str(p) for p in (s.source, s.line()) if p is not None) or f"sentence {si}"
                split.append(f"{where} ({len(s.tokens)} words, {count + 1} windows)")
        if split and warn:
            log.warning("%d of %d sentences exceed the encoder's %d sub-tokens and were split into windows: %s",
                        len(split), len(sentences), enc.max_length, first_few(split))
        return out

    def batches(self, windows: list[Window], batch_size: int, shuffle: bool = False, seed: int = 0,
                buckets: bool = True) -> list[Batch]:
        """Batches of windows: ids, mask, and the first sub-token of each word (B, most words)."""
        out = []
        for idx in batch_order([len(w.input_ids) for w in windows], batch_size, shuffle, seed, buckets):
            ids, mask = padded([windows[i].input_ids for i in idx], self.encoder.pad_id)
            pos = torch.zeros((len(idx), max(len(windows[i].word_pos) for i in idx)), dtype=torch.long)
            for r, i in enumerate(idx):
                pos[r, : len(windows[i].word_pos)] = torch.tensor(windows[i].word_pos)
            out.append((idx, {"input_ids": ids, "attention_mask": mask, "word_pos": pos}))
        return out

    def forward(self, input_ids, attention_mask, word_pos) -> torch.Tensor:
        """Word vectors (B, W, H); W is the longest window's word count."""
        hidden = self.encoder(input_ids, attention_mask)
        return hidden[torch.arange(hidden.size(0), device=hidden.device)[:, None], word_pos]

    def place(self, out: np.ndarray, windows: list[Window], idx: list[int], rows: np.ndarray) -> None:
        for r, i in enumerate(idx):
            w = windows[i]
            out[w.at : w.at + len(w.word_pos)] = rows[r, : len(w.word_pos)]

    def save(self, path: Path) -> None:
        self.encoder.save(path)


class TextRepresenter(Representer[str]):
    """One vector per plain text (a relation description, a label name): the mean of the encoder's
    token states, or learned weighted means (a linear score per token, softmax over the text;
    each starts as the plain mean). With `heads` > 1 the weighted means of separate scorers are
    concatenated: a description's "virtual" head and tail entities (EMMA). Texts over the limit
    are truncated, with one warning."""

    def __init__(self, encoder: nn.Module, tokenizer, pooling: str = "mean", max_length: int = 256,
                 heads: int = 1) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise KnnieError(f"unknown pooling '{pooling}'; choose one of {', '.join(POOLINGS)}")
        check_count(heads, 1, "heads")
        if heads > 1 and pooling != "weighted":
            raise KnnieError("several pooling heads need weighted pooling (the mean is one vector)")
        self.encoder, self.tokenizer, self.pooling, self.heads = encoder, tokenizer, pooling, heads
        self.max_length = min(max_length, tokenizer.model_max_length)
        self.dim = heads * encoder.config.hidden_size
        if pooling == "weighted":
            self.scorer = nn.Linear(encoder.config.hidden_size, heads)
            nn.init.zeros_(self.scorer.weight)
            nn.init.zeros_(self.scorer.bias)

    @classmethod
    def fresh(cls, encoder: str | Path = DEFAULT_ENCODER, pooling: str = "mean", max_length: int = 256,
              heads: int = 1) -> TextRepresenter:
        """A pretrained encoder with new pooling (the weighted one starts as the plain mean)."""
        return cls(*load_encoder(encoder), pooling, max_length, heads)

    @classmethod
    def load(cls, path: Path) -> TextRepresenter:
        """What `save` wrote: the encoder, the pooling settings and (weighted) the pooling weights."""
        config = read_json(path / POOLING_FILE, "text pooling config")
        if not isinstance(config, dict) or not {"pooling", "max_length"} <= set(config) <= {"pooling", "max_length",
                                                                                          "heads"}:
            raise DataError(f"needs pooling, max_length (and heads), found {config!r}", path=path / POOLING_FILE)
        representer = cls(*load_encoder(path), config["pooling"], config["max_length"], config.get("heads", 1))
        if representer.pooling == "weighted":
            weights = path / POOLING_WEIGHTS
            try:
                representer.scorer.load_state_dict(read_safetensors(weights, framework="torch"))
            except RuntimeError as e:
                raise DataError(f"pooling weights do not fit the encoder ({e})", path=weights) from e
        return representer

    @property
    def representation(self) -> str:
        heads = f" ({self.heads} heads)" if self.heads > 1 else ""
        return f"text: {self.pooling} pooling{heads} of the encoder's token states"

    def fingerprint(self) -> str:
        """The encoder's and the pooling's weights, and `representation`."""
        return fingerprint(self, self.representation)

    def prepare(self, items: list[str]) -> tuple[list[list[int]], int]:
        for i, text in enumerate(items):
            if not isinstance(text, str) or not text.strip():
                raise DataError(f"needs a non-empty text, found {text!r}", path=f"text {i}")
        ids = self.tokenizer(list(items), truncation=False)["input_ids"]
        cut = [f"text {i} ({len(row)} sub-tokens)" for i, row in enumerate(ids) if len(row) > self.max_length]
        if cut:
            log.warning("%d of %d texts exceed the encoder's %d sub-tokens and were truncated: %s", len(cut),
                        len(items), self.max_length, first_few(cut))
            ids = self.tokenizer(list(items), truncation=True, max_length=self.max_length)["input_ids"]
        return ids, len(items)

    def batches(self, units: list[list[int]], batch_size: int, shuffle: bool = False, seed: int = 0,
                buckets: bool = True) -> list[Batch]:
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        out = []
        for idx in batch_order([len(ids) for ids in units], batch_size, shuffle, seed, buckets):
            ids, mask = padded([units[i] for i in idx], pad)
            out.append((idx, {"input_ids": ids, "attention_mask": mask}))
        return out

    def forward(self, input_ids, attention_mask) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "mean":
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        scores = self.scorer(hidden).masked_fill(mask == 0, float("-inf"))  # (B, L, heads)
        return torch.einsum("blh,bld->bhd", torch.softmax(scores, dim=1), hidden).flatten(1)

    def place(self, out: np.ndarray, units: list[list[int]], idx: list[int], rows: np.ndarray) -> None:
        out[idx] = rows

    def save(self, path: Path) -> None:
        from safetensors.torch import save_file

        self.encoder.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        write_json(path / POOLING_FILE, {"pooling": self.pooling, "max_length": self.max_length, "heads": self.heads})
        if self.pooling == "weighted":
            save_file({k: v.contiguous() for k, v in self.scorer.state_dict().items()}, str(path / POOLING_WEIGHTS))
