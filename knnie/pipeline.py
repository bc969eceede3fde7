"""`Pipeline`: raw text → entities → relations, with character offsets into the original text.

    from knnie import Pipeline
    pipe = Pipeline.from_pretrained("ner_model_dir", "re_model_dir")
    [x] = pipe.extract(["Marie Curie worked for the Sorbonne in Paris."], neighbours=3)
    print(x.to_dict())

Each text is split into sentences (pysbd, offsets kept), every sentence of every text goes through
the entity recognizer in one batched call, and every ordered pair of mentions within a sentence
(with `window` = w, also across up to w neighbouring sentences, encoded as one joined context)
through the relation extractor in one batched call; pairs predicted as the negative label are
dropped. Nothing is cut silently: a sentence longer than the recognizer's encoder is read in
windows, and where a window boundary falls inside a mention, or a pair does not fit the relation
encoder (that pair gets no answer), the extraction's `warnings` say so and one summary line is logged
(besides the encoders' own one-line notices that they read long input in windows).

The relation extractor's typed markers must know every entity type the recognizer can predict
(an untyped extractor takes any): it would otherwise read markers it never learned, so such a
pairing is refused when the pipeline is built and again when extracting (memories can grow types).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import torch

from knnie.data.document import Document
from knnie.data.schema import Neighbour, RelationExample, Span, TaggedSentence
from knnie.data.tokenize import split_text
from knnie.encoders.markers import first_few
from knnie.errors import KnnieError, check_count
from knnie.progress import track
from knnie.tasks.ner import EntityRecognizer
from knnie.tasks.re import RelationExtractor

log = logging.getLogger(__name__)


@dataclass
class Entity:
    """A mention found in a text: [start, end) in characters of the text, its type, the mean
    probability of its words' tags and (on request) the training words nearest its first word.
    `sentence` and `tokens` place it among the text's sentences and that sentence's tokens (a
    `Document`'s own tokens: what token-level scoring compares)."""

    id: str
    start: int
    end: int
    type: str
    text: str
    score: float
    neighbours: list[Neighbour] | None = None
    sentence: int = 0
    tokens: tuple[int, int] = (0, 0)

    def to_dict(self) -> dict[str, Any]:
        d = {"id": self.id, "start": self.start, "end": self.end, "type": self.type, "text": self.text,
             "score": self.score}
        if self.neighbours is not None:
            d["neighbours"] = [n.to_row() for n in self.neighbours]
        return d


@dataclass
class ExtractedRelation:
    """A relation from entity `head` to entity `tail` (their ids), its probability and the split of it
    between the classifier head (`p_model`) and the memories (`p_knn`), and the memory entries behind it."""

    head: str
    tail: str
    label: str
    probability: float
    p_model: float | None
    p_knn: float | None
    neighbours: list[Neighbour] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {"head": self.head, "tail": self.tail, "label": self.label, "probability": self.probability,
             "p_model": self.p_model, "p_knn": self.p_knn}
        if self.neighbours is not None:
            d["neighbours"] = [n.to_row() for n in self.neighbours]
        return d


@dataclass
class Extraction:
    """What one text gave: its entities (ids T1, T2, … in text order), the relations between them
    that are not the negative label, and warnings (mentions cut by an encoder window, pairs too long
    for the relation encoder)."""

    text: str
    entities: list[Entity] = field(default_factory=list)
    relations: list[ExtractedRelation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "entities": [e.to_dict() for e in self.entities],
                "relations": [r.to_dict() for r in self.relations], "warnings": list(self.warnings)}


@dataclass
class _Sentence:
    """One sentence of one input: its tokens with offsets into the input's text."""

    item: int  # the input it belongs to
    index: int  # its place among that input's sentences
    tokens: list[str]
    offsets: list[tuple[int, int]]


class Pipeline:
    """An entity recognizer and a relation extractor run one after the other over raw text."""

    def __init__(self, recognizer: EntityRecognizer, extractor: RelationExtractor, language: str = "en") -> None:
        """`language`: pysbd's sentence rules for raw text (an ISO 639-1 code pysbd knows)."""
        import pysbd

        self.recognizer, self.extractor = recognizer, extractor
        self.segmenter = pysbd.Segmenter(language=language, clean=False, char_span=False)
        self.check_types()

    @classmethod
    def from_pretrained(cls, ner_dir: str, re_dir: str, device: str | torch.device = "auto",
                        language: str = "en") -> Pipeline:
        """Load both model directories (with their memories) onto `device`."""
        return cls(EntityRecognizer.from_pretrained(ner_dir, device=device),
                   RelationExtractor.from_pretrained(re_dir, device=device), language)

    def entity_types(self) -> set[str]:
        """The types the recognizer can predict: those of its head's tags and of its memories'."""
        return {tag[2:] for tag in self.recognizer.label_space if tag != "O"}

    def check_types(self) -> None:
        """Refuse entity types the extractor's typed markers do not know (see the module's doc)."""
        known = set(self.extractor.config.entity_types)
        unknown = self.entity_types() - known
        if known and unknown:
            raise KnnieError(f"the entity recognizer predicts types {sorted(unknown)} that the relation extractor "
                             f"has no markers for (it knows {sorted(known)}); train the relation model with these "
                             "entity types, or the recognizer without them")

    # -- extraction ------------------------------------------------------------------------
    def extract(self, texts: list[str | Document], neighbours: int = 0, window: int = 0, batch_size: int = 64,
                show_progress: bool = False) -> list[Extraction]:
        """Entities and relations of each text, in input order. A `Document` (pre-tokenised, e.g.
        read by `read_documents`) is one sentence and keeps its tokens; its offsets point into
        `Document.located()`'s text, and its own entities are not used. `neighbours`: memory
        entries to return with every entity and relation. `window`: also pair mentions up to this
        many sentences apart."""
        check_count(neighbours, 0, "neighbours")
        check_count(window, 0, "window")
        check_count(batch_size, 1, "batch_size")
        self.check_types()
        results, sentences = [], []
        for i, item in track(enumerate(texts), "splitting sentences", len(texts), show_progress):
            extraction, parts = self._sentences(item, i)
            results.append(extraction)
            sentences += parts
        found = self.recognizer.predict(
            [TaggedSentence(s.tokens, None, results[s.item].text, s.offsets, f"text {s.item}") for s in sentences],
            neighbours, batch_size, show_progress)
        mentions: list[list[Span]] = []
        for s, prediction in zip(sentences, found):
            extraction = results[s.item]
            mentions.append(prediction.entities)
            for cut in prediction.windows[1:]:
                extraction.warnings += [
                    f"entity '{extraction.text[e.char_start : e.char_end]}' [{e.char_start}, {e.char_end}) spans the "
                    f"boundary of two encoder windows (sentence {s.index + 1} is longer than the recognizer's "
                    "limit): its words were tagged in separate windows"
                    for e in prediction.entities if e.start < cut < e.end]
        ids = self._entities(sentences, mentions, results, neighbours > 0)
        self._relations(sentences, mentions, ids, results, neighbours, window, batch_size, show_progress)
        warned = [f"text {i}: {w}" for i, r in enumerate(results) for w in r.warnings]
        if warned:
            log.warning("%d warnings in %d of %d texts (see Extraction.warnings): %s", len(warned),
                        sum(bool(r.warnings) for r in results), len(results), first_few(warned, 2))
        return results

    def _sentences(self, item: str | Document, i: int) -> tuple[Extraction, list[_Sentence]]:
        """An input's (empty) extraction and its sentences: pysbd's for raw text, the document itself
        for a `Document`."""
        if isinstance(item, Document):
            text, offsets = item.located()
            return Extraction(text), [_Sentence(i, 0, list(item.tokens), list(offsets))] if item.tokens else []
        if not isinstance(item, str):
            raise KnnieError(f"text {i}: expected a string or a Document, found {type(item).__name__}")
        extraction, out, at = Extraction(item), [], 0
        for segment in self.segmenter.segment(item) if item.strip() else []:
            start = item.find(segment, at)  # pysbd without cleaning returns pieces of the text, in order
            if start < 0:  # it changed the text: offsets would be wrong, so the rest is read as one sentence
                extraction.warnings.append(f"the sentence splitter changed the text after character {at}; the rest "
                                           "was read as one sentence")
                start, segment = at, item[at:]
            at = start + len(segment)
            tokens, offsets = split_text(segment, self.recognizer.config.char_tokens)
            if tokens:
                out.append(_Sentence(i, len(out), tokens, [(a + start, b + start) for a, b in offsets]))
            if at == len(item):
                break
        return extraction, out

    @staticmethod
    def _entities(sentences: list[_Sentence], mentions: list[list[Span]], results: list[Extraction],
                  with_neighbours: bool) -> list[list[str]]:
        """Add each sentence's mentions to its text's extraction; their ids, per sentence."""
        ids = []
        for s, spans in zip(sentences, mentions):
            extraction = results[s.item]
            ids.append([])
            for e in spans:
                entity = Entity(f"T{len(extraction.entities) + 1}", e.char_start, e.char_end, e.type,
                                extraction.text[e.char_start : e.char_end], e.score,
                                list(e.neighbours) if with_neighbours else None, s.index, (e.start, e.end))
                extraction.entities.append(entity)
                ids[-1].append(entity.id)
        return ids

    def _relations(self, sentences: list[_Sentence], mentions: list[list[Span]], ids: list[list[str]],
                   results: list[Extraction], neighbours: int, window: int, batch_size: int,
                   show_progress: bool) -> None:
        """Classify every candidate pair in one call and add the non-negative ones to their extractions."""
        examples, pairs = [], []
        for a, first in enumerate(sentences):
            for b in range(a, min(a + window + 1, len(sentences))):
                if sentences[b].item != first.item:
                    break
                context = sentences[a : b + 1]
                shift = sum(len(s.tokens) for s in context[:-1])  # where sentence b starts in the context
                here = list(zip(mentions[a], ids[a]))
                there = [(_moved(e, shift), i) for e, i in zip(mentions[b], ids[b])]
                candidates = ([(x, y) for x in here for y in here if x is not y] if a == b
                              else [p for x in here for y in there for p in ((x, y), (y, x))])
                tokens = [t for s in context for t in s.tokens]
                offsets = [o for s in context for o in s.offsets]
                for (head, head_id), (tail, tail_id) in candidates:
                    examples.append(RelationExample(tokens, head, tail, None, results[first.item].text, offsets,
                                                    f"text {first.item}"))
                    pairs.append((first.item, head_id, tail_id))
        predictions = self.extractor.predict(examples, neighbours, batch_size, show_progress, warn=False)
        negative = self.extractor.negative_label
        for (item, head, tail), p in zip(pairs, predictions):
            extraction = results[item]
            if p.label is None:
                extraction.warnings.append(f"pair {head} → {tail} not classified: {p.reason}")
            elif p.label != negative:
                extraction.relations.append(ExtractedRelation(head, tail, p.label, p.probability, p.p_model, p.p_knn,
                                                              p.neighbours if neighbours else None))
        for extraction in results:
            extraction.relations.sort(key=lambda r: (int(r.head[1:]), int(r.tail[1:])))


def _moved(span: Span, shift: int) -> Span:
    """The span `shift` tokens further on (its place in a context of several sentences)."""
    return replace(span, start=span.start + shift, end=span.end + shift)
