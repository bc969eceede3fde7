"""The data of the FewRel zero-shot benchmark (EMMA / RE-Matching setting): every sentence of the 80
FewRel relations that ../shared/data holds, keyed by Wikidata P-id, and RE-Matching's class splits.

RE-Matching's own instance file (fewrel_dataset.json, 700 sentences per relation) is not available, so
the pool is gathered from what is, in this order, each example labelled with its P-id:

* wiki80/knnre_pure/dev.json (PURE): 5,070 examples, all new;
* wiki80/knnre_pure/test.json (PURE): 5,600, 5,599 new (1 is in dev);
* wiki80/opennre/cp_train_0.1.txt (OpenNRE): 3,920, 3,527 new (393 are in dev);
* fewrel/val_wiki.json (FewRel): 11,200, 8,384 new (2,815 are in the Wiki80 files: 990 in dev, 1,120 in
  test, 784 in cp_train, some in two of them; 1 occurs twice in val_wiki).

An example counts once however often it occurs: the same sentence (its tokens, lower-cased: OpenNRE's
files lower-case entity names, though their tokens keep their case, so here this changes no count)
with the same head and tail spans and the same relation; no sentence and pair has two relations. Of
the 25,790 examples read, 22,580 are distinct: per relation min 164, mean 282.25, max 700 (the 16
val_wiki relations 699 or 700 each, since Wiki80 took its sentences of them from val_wiki; the other
64 relations 164 to 195 each). A sentence may occur again with another entity pair: that is another
example. Entity types are dropped (the sources disagree: "sub"/"obj" in the PURE files, CP's NER
types in OpenNRE's, none in FewRel's).

Import it as the other benchmarks import each other (`from fewrel_zs import fewrel_pool`, bench/ on
the path) or, from the repository root, as `bench.fewrel_zs`: it imports only knnie.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from knnie import DataError, RelationExample, Span, read_relations
from knnie.data.files import parse_json, read_text

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SPLITS = ("40", "41", "42", "43", "ori")  # RE-Matching's seeds for FewRel, and its original split
WIKI80 = ("wiki80/knnre_pure/dev.json", "wiki80/knnre_pure/test.json", "wiki80/opennre/cp_train_0.1.txt")
FEWREL = "fewrel/val_wiki.json"


def fewrel_pool(shared: Path) -> dict[str, list[RelationExample]]:
    """All distinct examples of the 80 FewRel relations, keyed by P-id (each labelled with it), in
    file order (see the module's docstring)."""
    pids = wiki80_pids(shared)
    pool: dict[str, list[RelationExample]] = defaultdict(list)
    seen = set()
    for name in (*WIKI80, FEWREL):
        for ex in read_relations(shared / name, negatives=False):  # PURE files: one labelled pair per sentence
            label = ex.label if name == FEWREL else pids[ex.label]
            key = (tuple(t.lower() for t in ex.tokens), ex.head.start, ex.head.end, ex.tail.start, ex.tail.end,
                   label)
            if key in seen:
                continue
            seen.add(key)
            ex.head, ex.tail, ex.label = Span(ex.head.start, ex.head.end), Span(ex.tail.start, ex.tail.end), label
            pool[label].append(ex)
    return dict(pool)


def wiki80_pids(shared: Path) -> dict[str, str]:
    """Wiki80's relation names → their P-ids, by FewRel's pid2name.json; each name must name exactly one."""
    path = shared / "fewrel" / "pid2name.json"
    by_name = defaultdict(list)
    for pid, (name, _) in parse_json(read_text(path), path).items():
        by_name[name].append(pid)
    rel2id = shared / "wiki80" / "opennre" / "wiki80_rel2id.json"
    names = parse_json(read_text(rel2id), rel2id)
    unmatched = {name: by_name[name] for name in names if len(by_name[name]) != 1}
    if unmatched:
        raise DataError(f"Wiki80 relation names with no or several P-ids in {path}: {unmatched}", path=rel2id)
    return {name: by_name[name][0] for name in names}


def rematching_split(shared: Path, m: int, split: str) -> tuple[list[str], list[str], list[str]]:
    """RE-Matching's FewRel class split with m unseen test relations (5, 10 or 15): the P-ids of its
    train, eval and test relations, each in the split's own order."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, not {split!r}")
    path = shared / "zeroshot" / "rel2id" / "fewrel_rel2id" / f"fewrel_rel2id_{m}_{split}.json"
    parts = parse_json(read_text(path, "split file"), path)
    train, dev, test = (sorted(parts[k], key=parts[k].get) for k in ("train", "eval", "test"))
    return train, dev, test
