"""Relation extraction scores: micro-F1 without the no-relation label, macro-F1,
per-relation P/R/F1, and the SemEval-2010 Task 8 official score."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

_SEMEVAL = re.compile(r"^(.+)\((e1,e2|e2,e1)\)$")


def _prf(tp: float, n_pred: float, n_gold: float) -> tuple[float, float, float]:
    p = tp / n_pred if n_pred else 0.0
    r = tp / n_gold if n_gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def micro_f1_ids(pred: np.ndarray, gold: np.ndarray, negative: int | None) -> np.ndarray:
    """Micro-F1 of each row of `pred` (m, n) against `gold` (n,), ignoring the negative id
    (plain accuracy when there is none). Vectorised for the tuner."""
    if negative is None:
        return (pred == gold).mean(axis=-1)
    tp = ((pred == gold) & (gold != negative)).sum(axis=-1)
    n_pred = (pred != negative).sum(axis=-1)
    n_gold = (gold != negative).sum()
    denom = n_pred + n_gold
    return np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0)


def relation_report(gold: list[str], pred: list[str], negative: str | None = None) -> dict:
    """Micro P/R/F1 excluding `negative`, macro-F1 over the gold relations, per-relation scores."""
    tp, n_pred, n_gold = Counter(), Counter(pred), Counter(gold)
    for g, p in zip(gold, pred):
        if g == p:
            tp[g] += 1
    positive = sorted(set(gold) - {negative})
    per = {}
    for r in positive:
        p_, r_, f_ = _prf(tp[r], n_pred[r], n_gold[r])
        per[r] = {"precision": p_, "recall": r_, "f1": f_, "support": n_gold[r]}
    mp, mr, mf = _prf(
        sum(tp[r] for r in tp if r != negative),
        sum(v for r, v in n_pred.items() if r != negative),
        sum(v for r, v in n_gold.items() if r != negative),
    )
    report = {
        "micro_precision": mp, "micro_recall": mr, "micro_f1": mf,
        "macro_f1": float(np.mean([v["f1"] for v in per.values()])) if per else 0.0,
        "accuracy": sum(tp.values()) / len(gold) if gold else 0.0,
        "per_relation": per,
    }
    if is_semeval(set(gold)):
        report["semeval_official_f1"] = semeval_official_f1(gold, pred)
    return report


def macro_prf(gold: np.ndarray, pred: np.ndarray, names: list[str]) -> dict:
    """Zero-shot scores as ZS-BERT and RE-Matching report them: macro precision and recall are the
    means over the gold relations of their per-relation precision and recall, and macro-F1 is their
    harmonic mean (`gold`, `pred`: ids into `names`)."""
    report = relation_report([names[i] for i in gold], [names[i] for i in pred])
    per = report["per_relation"]
    p = float(np.mean([v["precision"] for v in per.values()]))
    r = float(np.mean([v["recall"] for v in per.values()]))
    return {"macro_precision": p, "macro_recall": r, "macro_f1": 2 * p * r / (p + r) if p + r else 0.0,
            "accuracy": report["accuracy"], "per_relation": per}


def is_semeval(labels: set[str]) -> bool:
    """SemEval-2010 Task 8 labels: directed `Cause-Effect(e1,e2)` style plus `Other`."""
    directed = [x for x in labels if _SEMEVAL.match(x)]
    return bool(directed) and len(directed) >= len(labels) - 1 and labels - set(directed) <= {"Other"}


def semeval_official_f1(gold: list[str], pred: list[str]) -> float:
    """The official score: (9+1)-way macro-F1 over the 9 relations (Other excluded), with
    direction taken into account: a prediction of the right relation in the wrong direction
    counts as predicted for that relation but not as correct."""

    def base(label: str) -> str:
        m = _SEMEVAL.match(label)
        return m.group(1) if m else label

    tp, n_pred, n_gold = Counter(), Counter(), Counter()
    for g, p in zip(gold, pred):
        n_gold[base(g)] += 1
        n_pred[base(p)] += 1
        if g == p:
            tp[base(g)] += 1
    relations = sorted({base(g) for g in gold} - {"Other"})
    return float(np.mean([_prf(tp[r], n_pred[r], n_gold[r])[2] for r in relations])) if relations else 0.0
