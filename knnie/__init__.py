"""knnie: retrieval-augmented information extraction.

    from knnie import RelationExtractor, read_relations
    extractor = RelationExtractor.from_pretrained("model_dir")
    for p in extractor.predict(read_relations("sentences.jsonl"), neighbours=3):
        print(p.label, p.probability, [n.label for n in p.neighbours])

    from knnie import EntityRecognizer
    ner = EntityRecognizer.from_pretrained("ner_model_dir")
    [p] = ner.predict(["Ada Lovelace was born in London."], neighbours=3)
    for e in p.entities:
        print(e.type, p.text[e.char_start : e.char_end], e.score, [n.label for n in e.neighbours])

    from knnie import Pipeline
    pipe = Pipeline.from_pretrained("ner_model_dir", "re_model_dir")
    [x] = pipe.extract(["Ada Lovelace was born in London. She worked with Charles Babbage."])
    print(x.to_dict())  # entities and relations with character offsets into the text
"""

from knnie.data import (
    NO_RELATION,
    Document,
    Neighbour,
    Relation,
    RelationExample,
    RelationType,
    Span,
    TaggedSentence,
    example_from_text,
    read_documents,
    read_relation_types,
    read_relations,
    read_sentences,
    read_tagged,
)
from knnie.errors import DataError, IncompatibleArtefactError, KnnieError
from knnie.memory import KnnParams, Memory
from knnie.pipeline import Extraction, Pipeline
from knnie.tasks.ner import EntityRecognizer, NERPrediction, train_ner
from knnie.tasks.re import RelationExtractor, RelationPrediction, TrainConfig, train
from knnie.tasks.registry import load
from knnie.tasks.zeroshot import ZeroShotRelationExtractor, ZeroShotTrainConfig, train_zeroshot

__all__ = [
    "NO_RELATION", "DataError", "Document", "EntityRecognizer", "Extraction", "IncompatibleArtefactError",
    "KnnParams", "KnnieError", "Memory", "NERPrediction", "Neighbour", "Pipeline", "Relation", "RelationExample",
    "RelationExtractor", "RelationPrediction", "RelationType", "Span", "TaggedSentence", "TrainConfig",
    "ZeroShotRelationExtractor", "ZeroShotTrainConfig", "example_from_text", "load", "read_documents",
    "read_relation_types", "read_relations", "read_sentences", "read_tagged", "train", "train_ner", "train_zeroshot",
]
__version__ = "0.1.0"
