"""knnie: retrieval-augmented information extraction.

    from knnie import RelationExtractor, read_relations
    extractor = RelationExtractor.from_pretrained("model_dir")
    for p in extractor.predict(read_relations("sentences.jsonl"), neighbours=3):
        print(p.label, p.probability, [n.label for n in p.neighbours])
"""

from knnie.data import NO_RELATION, RelationExample, Span, example_from_text, read_relations
from knnie.errors import DataError, IncompatibleArtefactError, KnnieError
from knnie.memory import KnnParams, Memory
from knnie.tasks.re import RelationExtractor, RelationPrediction, TrainConfig, train

__all__ = [
    "NO_RELATION", "DataError", "IncompatibleArtefactError", "KnnParams", "KnnieError", "Memory",
    "RelationExample", "RelationExtractor", "RelationPrediction", "Span", "TrainConfig",
    "example_from_text", "read_relations", "train",
]
__version__ = "0.1.0"
