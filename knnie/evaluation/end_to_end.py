"""End-to-end scores of entity and relation extraction, as PURE (Zhong & Chen, NAACL 2021) computes
them (`evaluate_predictions` of its `shared/data_structures.py`, after DyGIE++), per sentence:

- entity: a predicted entity is correct iff a gold entity has its boundaries and its type;
- relation ("boundaries"): a predicted relation is correct iff a gold relation has the same head
  and tail boundaries (in that order) and the same label; entity types are not looked at;
- strict relation: correct as above, and both its head and tail spans are among the correctly
  predicted entities (boundaries and type right).

Precision is over the predictions, recall over the gold annotation: a gold entity a model cannot
produce (a nested one, for a BIO tagger) counts as missed. Micro-averaged over all sentences.
"""

from __future__ import annotations

from knnie.data.document import Document
from knnie.data.schema import Span
from knnie.evaluation.entities import _prf

COUNTS = ("entity_correct", "entity_gold", "entity_predicted", "relation_correct", "relation_gold",
          "relation_predicted", "strict_relation_correct")


def _bounds(span: Span) -> tuple[int, int]:
    return span.start, span.end


def end_to_end_scores(gold: list[Document], predicted: list[Document]) -> dict[str, dict]:
    """Entity, relation and strict-relation precision/recall/F1 (and the counts behind them) of
    `predicted` documents against the `gold` ones, paired in order; each pair must hold the same
    tokens. A predicted document's relations may be None (no relation predicted)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold documents but {len(predicted)} predicted ones: they are paired in order")
    counts = dict.fromkeys(COUNTS, 0)
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if g.tokens != p.tokens:
            raise ValueError(f"document {i} ({g.source or 'no source'}): the predicted document's tokens differ "
                             "from the gold ones; pair the predictions with the documents they were made from")
        gold_entities = set(g.entities)  # spans compare by tokens and type
        correct = [e for e in p.entities if e in gold_entities]
        right = {(e.start, e.end) for e in correct}
        counts["entity_gold"] += len(g.entities)
        counts["entity_predicted"] += len(p.entities)
        counts["entity_correct"] += len(correct)
        gold_relations = {(_bounds(r.head), _bounds(r.tail), r.label) for r in g.relations or []}
        counts["relation_gold"] += len(gold_relations)
        for r in p.relations or []:
            head, tail = _bounds(r.head), _bounds(r.tail)
            counts["relation_predicted"] += 1
            if (head, tail, r.label) in gold_relations:
                counts["relation_correct"] += 1
                counts["strict_relation_correct"] += head in right and tail in right
    report = {name: _prf(counts[f"{name}_correct"], counts[f"{kind}_predicted"], counts[f"{kind}_gold"])
              for name, kind in (("entity", "entity"), ("relation", "relation"), ("strict_relation", "relation"))}
    report["counts"] = counts
    return report
