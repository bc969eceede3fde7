"""Entity-level scores (CoNLL/seqeval micro-F1) of BIO tags.

Decoding rule, used everywhere (tuning, prediction, evaluation): the tag of each word is the
argmax of its distribution, and the tags are read as entities by `knnie.data.tagged.bio_spans`
(as conlleval and seqeval's default mode read them). So every tag sequence gives valid spans
and the fast scorer below equals seqeval's micro-F1.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from knnie.data.schema import Span
from knnie.data.tagged import bio_spans, entity_type


class TagTable:
    """Per-tag arrays (is B-, type id; O has type −1) for scoring tag ids with array math."""

    def __init__(self, tags: list[str]) -> None:
        types = sorted({t for t in map(entity_type, tags) if t is not None})
        self.types = types
        self.begin = np.array([t.startswith("B-") for t in tags])
        self.type_id = np.array([-1 if t == "O" else types.index(t[2:]) for t in tags])

    def chunks(self, ids: np.ndarray, first: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For tag ids (..., n) over concatenated sentences (`first` marks each sentence's
        first word): the type of each word, whether it starts an entity, whether it continues one."""
        typ = self.type_id[ids]
        prev = np.concatenate([np.full((*typ.shape[:-1], 1), -1), typ[..., :-1]], axis=-1)
        prev[..., first] = -1
        inside = typ >= 0
        start = inside & (self.begin[ids] | (prev != typ))
        return typ, start, inside & ~start


def entity_f1_ids(pred: np.ndarray, gold: np.ndarray, first: np.ndarray, table: TagTable) -> np.ndarray:
    """Entity micro-F1 of each row of `pred` (m, n) against `gold` (n,), vectorised for the tuner.

    A predicted entity [s, e] is correct iff gold starts an entity of its type at s, continues
    it with the same type through e, and does not continue it at e + 1."""
    pred = np.atleast_2d(pred)
    m = pred.shape[0]
    g_typ, g_start, g_cont = table.chunks(gold, first)
    p_typ, p_start, p_cont = table.chunks(pred, first)
    p_in = p_start | p_cont
    bad = p_in & ~(((p_start & g_start) | (p_cont & g_cont)) & (p_typ == g_typ))
    after = np.zeros_like(p_cont)
    after[:, :-1] = p_cont[:, 1:]
    ends = p_in & ~after
    g_after = np.append(g_cont[1:], False)
    rs, cs = np.nonzero(p_start)
    re_, ce = np.nonzero(ends)  # pairs with the starts: both row-major, one end per start
    cum = np.cumsum(bad, axis=-1)
    n_bad = cum[re_, ce] - cum[rs, cs] + bad[rs, cs]
    correct = (n_bad == 0) & ~g_after[ce]
    tp = np.bincount(rs[correct], minlength=m)
    n_pred, n_gold = p_start.sum(axis=-1), g_start.sum()
    denom = n_pred + n_gold
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def _prf(tp: int, n_pred: int, n_gold: int) -> dict[str, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0}


def span_scores(gold: list[set[Span]], pred: list[set[Span]]) -> dict:
    """Micro P/R/F1 and per-type P/R/F1 (with support) from entity sets per sentence."""
    tp, n_pred, n_gold = Counter(), Counter(), Counter()
    for g, p in zip(gold, pred):
        n_gold.update(e.type for e in g)
        n_pred.update(e.type for e in p)
        tp.update(e.type for e in g & p)
    report = _prf(sum(tp.values()), sum(n_pred.values()), sum(n_gold.values()))
    report["per_type"] = {t: {**_prf(tp[t], n_pred[t], n_gold[t]), "support": n_gold[t]}
                          for t in sorted(set(n_gold) | set(n_pred))}
    return report


def entity_report(gold: list[list[str]], pred: list[list[str]]) -> dict:
    """Entity-level micro P/R/F1 and per type, as seqeval's default mode scores them."""
    return span_scores([set(bio_spans(g)) for g in gold], [set(bio_spans(p)) for p in pred])
