"""The data of the few-shot benchmarks (TKRE, issue 14), from what ../shared/data holds.

* Meta-training: the 64 Wiki80 relations outside FewRel's val_wiki (FewRel's train_wiki.json is not
  available), their sentences gathered by `fewrel_zs.fewrel_pool` (PURE's Wiki80 dev and test and
  CP's cp_train_0.1, deduplicated: 164 to 195 per relation), minus any sentence whose tokens
  (lower-cased) also occur in val_wiki or val_pubmed, so no evaluation sentence is trained on.
* Evaluation: the 16 val_wiki relations (FewRel 1.0's validation protocol) and the 10 val_pubmed
  relations (FewRel 2.0 domain adaptation), 700 and 100 sentences each.
* Relation schema: names and descriptions from FewRel's pid2name.json (val_pubmed's UMLS relations
  have none there: they are named by their own label).

`python bench/fewshot_data.py [--out DIR]` (default bench/.runs/fewshot) writes DIR/meta_train.jsonl (OpenNRE
format, labels are P-ids) and
DIR/meta_schema.json (knnie's relation-type format), the inputs of `knnie fewshot pretrain` and
`knnie fewshot generate` in the benchmarks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fewrel_zs import fewrel_pool
from knnie import RelationExample, read_relations
from knnie.data.files import parse_json, read_text
from knnie.io import write_json, write_jsonl

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
ARTEFACTS = Path("bench/.runs/fewshot")  # what the few-shot benchmarks hand each other: data, LLM output, encoders
VAL_WIKI = "fewrel/val_wiki.json"
VAL_PUBMED = "fewrel/val_pubmed.json"


def evaluation_set(shared: Path, name: str) -> dict[str, list[RelationExample]]:
    """val_wiki or val_pubmed as {relation: examples}, in file order."""
    pool: dict[str, list[RelationExample]] = {}
    for ex in read_relations(shared / name, negatives=False):
        pool.setdefault(ex.label, []).append(ex)
    return pool


def meta_train(shared: Path) -> dict[str, list[RelationExample]]:
    """The 64 meta-training relations (P-id → examples), none of whose sentences is in val_wiki or val_pubmed."""
    held = {VAL_WIKI: evaluation_set(shared, VAL_WIKI), VAL_PUBMED: evaluation_set(shared, VAL_PUBMED)}
    unseen = set(held[VAL_WIKI])
    evaluated = {_key(ex) for pool in held.values() for exs in pool.values() for ex in exs}
    return {pid: [ex for ex in exs if _key(ex) not in evaluated]
            for pid, exs in fewrel_pool(shared).items() if pid not in unseen}


def schema(shared: Path, relations: list[str]) -> list[dict[str, str]]:
    """{"id", "name", "description"} of each relation, from pid2name.json."""
    path = shared / "fewrel" / "pid2name.json"
    names = parse_json(read_text(path), path)
    return [{"id": r, "name": names[r][0], "description": names[r][1]} if r in names
            else {"id": r, "name": r, "description": r} for r in relations]


def _key(ex: RelationExample) -> tuple[str, ...]:
    return tuple(t.lower() for t in ex.tokens)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ARTEFACTS)
    parser.add_argument("--shared", type=Path, default=DATA)
    args = parser.parse_args()
    pool = meta_train(args.shared)
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "meta_train.jsonl", (ex.to_record() for exs in pool.values() for ex in exs))
    write_json(args.out / "meta_schema.json", schema(args.shared, sorted(pool)))
    counts = sorted(len(exs) for exs in pool.values())
    print(json.dumps({"relations": len(pool), "examples": sum(counts), "min": counts[0], "max": counts[-1]}))


if __name__ == "__main__":
    main()
