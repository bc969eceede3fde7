"""The token classifier and `EntityRecognizer`, knnie's front class for NER (kNN-NER).

Each word is represented by the encoder's last hidden state at its first sub-token
(`WordRepresenter`); a linear layer gives p_model(tag). An attached memory holds one key per
training word (that representation) with its gold tag as value: p_kNN(tag) ∝ Σ_i 1[tag = v_i]·
exp(−d_i/T) over the k nearest keys, and p = λ·p_kNN + (1 − λ)·p_model (p_kNN alone for a
headless recognizer). Tags are the argmax of p, read as entities by the conlleval repair rule
(see `knnie.data.tagged.bio_spans`) — in tuning, evaluation and prediction alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from knnie.data.document import Document
from knnie.data.schema import Span, TaggedSentence, joined_offsets
from knnie.data.tagged import bio_spans, read_tagged, sentence_from_text
from knnie.encoders.device import resolve_device
from knnie.encoders.loading import DEFAULT_ENCODER
from knnie.encoders.representer import Batch, Window, WordRepresenter
from knnie.encoders.words import CHAR_BILSTM, CharBiLSTMEncoder, HFWordEncoder, WordEncoder, load_word_encoder
from knnie.errors import DataError, KnnieError
from knnie.evaluation.entities import TagTable, entity_f1_ids, entity_report
from knnie.memory.tuner import ScoreFn
from knnie.tasks.base import MemoryAugmentedModel, check_count
from knnie.tasks.task_model import TaskModel

log = logging.getLogger(__name__)


@dataclass
class NERConfig:
    """Everything needed to rebuild an entity recognizer, saved as knnie_config.json."""

    tags: list[str]  # of the head; none when headless
    encoder: str = DEFAULT_ENCODER  # what it was trained from: a name, a path or "char-bilstm"
    encoder_kind: str = "hf"  # "hf" or "char-bilstm"
    char_tokens: bool = False  # raw text is split into characters (the training tokens were)
    max_length: int = 256
    dropout: float = 0.1
    knn: dict[str, dict] = field(default_factory=dict)  # memory name -> tuned KnnParams
    knn_only: dict[str, dict] = field(default_factory=dict)  # memory name -> best params at λ = 1
    mix: dict[str, float] | None = None  # memory name -> weight in the mix, tuned on dev
    fingerprint: str = ""
    task: str = "ner"
    head: bool = True  # False: no classifier, tags come from memories alone


def entity_types(sentences: list[TaggedSentence]) -> set[str]:
    """The entity types X of the B-X and I-X tags in the data."""
    return {t[2:] for s in sentences for t in s.tags or () if t != "O"}


def tag_set(sentences: list[TaggedSentence]) -> list[str]:
    """O, then B-X and I-X for every entity type X in the data."""
    return ["O"] + [f"{p}-{t}" for t in sorted(entity_types(sentences)) for p in "BI"]


@dataclass
class NERPrediction:
    """The tags of one text's words and the entities they give: spans with character offsets into
    `text`, scores and neighbours. `windows`: the first word of each encoder window the words were
    read in (more than one when the text was longer than the encoder's limit)."""

    text: str
    tokens: list[str]
    tags: list[str]
    entities: list[Span]
    windows: list[int] = field(default_factory=lambda: [0])

    def to_dict(self) -> dict[str, Any]:
        """What `knnie ner predict` writes: {text, tokens, tags, entities: [{text, type, start, end,
        char_start, char_end, score, neighbours}]}, neighbours as `Neighbour.to_row` gives them."""
        return {"text": self.text, "tokens": self.tokens, "tags": self.tags, "entities": [
            {"text": self.text[e.char_start : e.char_end], "type": e.type, "start": e.start, "end": e.end,
             "char_start": e.char_start, "char_end": e.char_end, "score": e.score,
             "neighbours": [n.to_row() for n in e.neighbours]} for e in self.entities]}


class EntityRecognizer(MemoryAugmentedModel[TaggedSentence, NERConfig]):
    """Find entities in text, consulting a memory of training words (kNN-NER).

    Persistence, memories, kNN interpolation and tuning come from `MemoryAugmentedModel`;
    several memories are averaged.

    >>> ner = EntityRecognizer.from_pretrained("model_dir")
    >>> ner.predict(["Ada Lovelace was born in London."], neighbours=3)[0].entities

    A headless recognizer (`headless`) has no classifier: it tags by the memories it consults.
    """

    config_class = NERConfig
    config_what = "NER model"
    label_word = "tags"
    knn_method = "knn_ner"
    task = "ner"

    @property
    def labels(self) -> list[str]:
        return self.config.tags

    @property
    def encoder(self) -> WordEncoder:
        return self.model.encoder

    # -- construction and persistence ------------------------------------------------------
    @classmethod
    def new(cls, tags: list[str], encoder: str = DEFAULT_ENCODER, train: list[TaggedSentence] = (),
            max_length: int = 256, dropout: float = 0.1, device: str | torch.device = "auto") -> EntityRecognizer:
        """An untrained recognizer on `device`. `encoder` is a Hugging Face name/path or
        "char-bilstm", whose character vocabulary is built from `train`."""
        if "O" not in tags or len(tags) < 2 or len(set(tags)) != len(tags):
            raise KnnieError(f"an entity recognizer needs the tag O and entity tags (B-X, I-X), each once; got "
                             f"{list(tags)}")
        target = resolve_device(device)  # a missing GPU is refused before the encoder is loaded
        char_tokens = bool(train) and all(len(t) == 1 for s in train for t in s.tokens)
        if encoder == CHAR_BILSTM:
            if not train:
                raise KnnieError("the char-bilstm encoder builds its vocabulary from training sentences; give some")
            word_encoder: WordEncoder = CharBiLSTMEncoder.from_sentences([s.tokens for s in train])
        else:
            word_encoder = HFWordEncoder.load(encoder, max_length)
        config = NERConfig(tags=list(tags), encoder=str(encoder), encoder_kind=word_encoder.kind,
                           char_tokens=char_tokens, max_length=word_encoder.max_length, dropout=dropout)
        return cls(TaskModel(WordRepresenter(word_encoder), len(tags), dropout), config).to(target)

    @classmethod
    def headless(cls, encoder: str = DEFAULT_ENCODER, max_length: int = 256, char_tokens: bool = False,
                 device: str | torch.device = "auto") -> EntityRecognizer:
        """A recognizer with no classifier head over a pretrained Hugging Face encoder: it tags each
        word by the memories it consults alone (λ = 1), over their tags. `char_tokens`: raw text is
        split into characters."""
        if encoder == CHAR_BILSTM:
            raise KnnieError("a headless recognizer needs a pretrained encoder; char-bilstm is trained from scratch")
        target = resolve_device(device)
        word_encoder = HFWordEncoder.load(encoder, max_length)
        config = NERConfig(tags=[], encoder=str(encoder), char_tokens=char_tokens,
                           max_length=word_encoder.max_length, dropout=0.0, head=False)
        return cls(TaskModel(WordRepresenter(word_encoder), None), config).to(target)

    @classmethod
    def _from_encoder(cls, path: Path, config: NERConfig) -> EntityRecognizer:
        representer = WordRepresenter(load_word_encoder(config.encoder_kind, path, config.max_length))
        return cls(TaskModel(representer, len(config.tags) if config.head else None, config.dropout), config)

    def _save_encoder(self, path: Path) -> None:
        self.representer.save(path)

    # -- encoding --------------------------------------------------------------------------
    def tag_ids(self, sentences: list[TaggedSentence], tags: list[str] | None = None) -> np.ndarray:
        """Gold tag ids in `tags` (default: the label space, the head's tags and those of the
        memories) of all words, concatenated; an unknown tag names its file and line."""
        index = {t: i for i, t in enumerate(self.label_space if tags is None else tags)}
        ids = []
        for s in sentences:
            if s.tags is None:
                raise DataError("sentence has no tags", path=s.source, line=s.line(), field="tags")
            for i, tag in enumerate(s.tags):
                if tag not in index:
                    raise DataError(f"tag '{tag}' is not one of the model's tags {list(index)}",
                                    path=s.source, line=s.line(i), field="tag")
                ids.append(index[tag])
        return np.array(ids, dtype=np.int64)

    def windows(self, sentences: list[TaggedSentence], warn: bool = True) -> list[Window]:
        """Each sentence as one window of sub-tokens, or several when it is longer than the
        encoder's limit (one warning for all such sentences, unless not `warn`); no word is ever dropped."""
        return self.representer.windows(sentences, warn)

    def batches(self, windows: list[Window], batch_size: int, shuffle: bool = False, seed: int = 0,
                buckets: bool = True) -> list[Batch]:
        """Dynamically padded batches: (window indices, tensors), grouped by `batch_order`:
        sorted by length for inference, length-bucketed shuffles for training."""
        return self.representer.batches(windows, batch_size, shuffle, seed, buckets)

    # -- memories --------------------------------------------------------------------------
    read_examples = staticmethod(read_tagged)

    def memory_entries(self, sentences: list[TaggedSentence], batch_size: int = 64, show_progress: bool = False
                       ) -> tuple[np.ndarray, list[str], list[dict[str, Any]]]:
        """One key per word of these tagged sentences (its vector), valued by its tag (tags the head
        does not know are kept: they are predicted through p_kNN)."""
        if not sentences:
            raise KnnieError("cannot build an empty memory: the data gave no sentences")
        for s in sentences:
            if s.tags is None:
                raise DataError("sentence has no tags", path=s.source, line=s.line(), field="tags")
        vectors, _ = self.encode(sentences, batch_size, show_progress)
        records = [{"text": s.sentence, "word": i, "tag": tag} for s in sentences for i, tag in enumerate(s.tags)]
        return vectors, [t for s in sentences for t in s.tags], records

    # -- prediction ------------------------------------------------------------------------
    def as_sentences(self, texts: list[str | list[str] | TaggedSentence]) -> list[TaggedSentence]:
        """Raw strings are tokenised (with character offsets); token lists are joined by spaces
        (no space for character-tokenised models) to give character offsets."""
        out = []
        for i, t in enumerate(texts):
            if isinstance(t, TaggedSentence):
                out.append(t)
            elif isinstance(t, str):
                out.append(sentence_from_text(t, self.config.char_tokens, source=f"input {i}"))
            else:
                if not t:
                    raise DataError("empty sentence", path=f"input {i}", field="tokens")
                sep = "" if self.config.char_tokens else " "
                out.append(TaggedSentence(list(t), None, sep.join(t), joined_offsets(t, len(sep)), f"input {i}"))
        return out

    def predict(self, texts: list[str | list[str] | TaggedSentence], neighbours: int = 0, batch_size: int = 64,
                show_progress: bool = False) -> list[NERPrediction]:
        """Entities of each text, with type, score and the nearest training words behind them. A
        text over the encoder's limit is read in windows (one warning for all; `NERPrediction.windows`
        says where each starts)."""
        check_count(neighbours, 0, "neighbours")
        check_count(batch_size, 1, "batch_size")
        sentences = self.as_sentences(texts)
        if not sentences:
            return []
        starts: list[list[int]] = [[] for _ in sentences]
        for w in self.windows(sentences, warn=False):  # the words' pieces are cached: cheap next to the encoder
            starts[w.sentence].append(w.first_word)
        vectors, p_model = self.encode(sentences, batch_size, show_progress)
        searches = self.search(vectors, at_least=neighbours)
        p = self.final(self.distributions(p_model, searches))
        best = p.argmax(-1)
        space = self.label_space
        results, at = [], 0
        for s, first_words in zip(sentences, starts):
            tags = [space[i] for i in best[at : at + len(s.tokens)]]
            offsets = s.char_offsets or joined_offsets(s.tokens)
            text = s.text if s.text is not None else " ".join(s.tokens)
            entities = []
            for e in bio_spans(tags):
                rows = np.arange(at + e.start, at + e.end)
                entities.append(replace(e, char_start=offsets[e.start][0], char_end=offsets[e.end - 1][1],
                                        score=float(p[rows, best[rows]].mean()),
                                        neighbours=tuple(self._neighbours(searches, at + e.start, neighbours))))
            results.append(NERPrediction(text, list(s.tokens), tags, entities, first_words))
            at += len(s.tokens)
        return results

    def predict_documents(self, documents: list[Document], neighbours: int = 0, batch_size: int = 64,
                          show_progress: bool = False) -> None:
        """Set each document's entities to the spans found in it, with character offsets (into
        `Document.located()`'s text), scores and neighbours; `Document.relation_examples` then pairs
        them for relation extraction. Documents of raw text should be split as this model's training
        text was (`Document.from_text(text, chars=recognizer.config.char_tokens)`)."""
        predictions = self.predict([d.tagged(tags=False) for d in documents], neighbours, batch_size, show_progress)
        for document, prediction in zip(documents, predictions):
            document.entities = prediction.entities

    # -- dev tuning and evaluation ---------------------------------------------------------
    def score_fn(self, sentences: list[TaggedSentence]) -> ScoreFn:
        """Entity micro-F1 (seqeval's) of rows of predicted tag ids, vectorised for the tuner."""
        gold = self.tag_ids(sentences)
        first = np.zeros(len(gold), dtype=bool)
        first[np.cumsum([0] + [len(s.tokens) for s in sentences[:-1]])] = True
        table = TagTable(self.label_space)
        return lambda pred: entity_f1_ids(pred, gold, first, table)

    def _dev_score(self, dev: list[TaggedSentence]) -> ScoreFn:
        """Refuses a dev set with no entity: entity F1 is 0 at every setting."""
        score = self.score_fn(dev)
        if all(tag == "O" for s in dev for tag in s.tags):
            raise KnnieError("the dev set has no entity (every tag is O): entity F1 is 0 at every setting, so "
                             "there is nothing to tune on; give dev sentences with entities")
        return score

    def predict_tags(self, sentences: list[TaggedSentence], batch_size: int = 64,
                     show_progress: bool = False) -> dict[str, list[list[str]]]:
        """Tags of every sentence for each method (vanilla, and knn/knn_ner with memories)."""
        p, _ = self.method_distributions(sentences, batch_size, show_progress)
        cuts = np.cumsum([len(s.tokens) for s in sentences[:-1]])
        space = self.label_space
        return {method: [[space[i] for i in part] for part in np.split(q.argmax(-1), cuts)]
                for method, q in p.items()}

    def evaluate(self, sentences: list[TaggedSentence], batch_size: int = 64,
                 show_progress: bool = False) -> dict[str, dict]:
        """Entity micro P/R/F1 and per type (seqeval's scores) for each method, side by side."""
        self.tag_ids(sentences)  # unknown tags are an error before any work
        tags = self.predict_tags(sentences, batch_size, show_progress)
        return {method: entity_report([s.tags for s in sentences], pred) for method, pred in tags.items()}

