"""Benchmark: the K-shot supervised protocol (TKRE, issue 14) on SemEval-2010 Task 8 and Wiki80.

`prepare` writes the shared inputs of the other benchmarks: the SemEval K = 8 sets (seeds 0-4, from OpenNRE's
train.txt) and the SemEval relation schema (19 labels with names and descriptions).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from common import log
from knnie import read_relations
from knnie.io import write_json, write_jsonl
from knnie.tasks.fewshot.kshot import sample_kshot

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SEMEVAL = "semeval2010/opennre"
RUNS = Path("/work/runs/fewshot/kshot")

# SemEval-2010 Task 8's nine relations (Hendrickx et al., 2010), in our words: (name, what e1 and e2 are).
# Each is directed: in "R(e1,e2)" the first marked nominal e1 is the head and e2 the tail; "R(e2,e1)" swaps roles.
SEMEVAL_RELATIONS = {
    "Cause-Effect": ("cause", "effect", "brings about, produces or leads to"),
    "Instrument-Agency": ("instrument", "agent", "is the tool, device or means used by"),
    "Product-Producer": ("product", "producer", "is made, created or produced by"),
    "Content-Container": ("content", "container", "is held or carried inside"),
    "Entity-Origin": ("entity", "origin", "comes from, is derived from or starts out at"),
    "Entity-Destination": ("entity", "destination", "moves towards or ends up in"),
    "Component-Whole": ("component", "whole", "is a functional part or piece of"),
    "Member-Collection": ("member", "collection", "is one member of the group"),
    "Message-Topic": ("message", "topic", "is a communication (text, talk, sign) about"),
}


def semeval_schema() -> list[dict[str, str]]:
    """The 19 SemEval labels in `read_relation_types` format: both directions of each relation, and Other."""
    schema = []
    for relation, (first, second, verb) in SEMEVAL_RELATIONS.items():
        for head, tail, roles in ((first, second, "e1,e2"), (second, first, "e2,e1")):
            sentence = (f"the head {verb} the tail" if roles == "e1,e2"
                        else f"the tail {verb} the head")
            schema.append({"id": f"{relation}({roles})", "name": f"{head} - {tail}",
                           "description": f"{sentence}: the head (e1) is the {head}, the tail (e2) the {tail}"})
    schema.append({"id": "Other", "name": "other",
                   "description": "none of the nine relations holds between the head (e1) and the tail (e2), "
                                  "in either direction"})
    return schema


def prepare(shared: Path, out: Path, k: int, seeds: range) -> None:
    """Write out/semeval_schema.json and out/semeval_k{k}_s{seed}.jsonl (atomic writes)."""
    write_json(out / "semeval_schema.json", semeval_schema())
    train = read_relations(shared / SEMEVAL / "train.txt")
    for seed in seeds:
        chosen, summary = sample_kshot(train, k, seed)
        write_jsonl(out / f"semeval_k{k}_s{seed}.jsonl", (ex.to_record() for ex in chosen))
        log(f"semeval K={k} seed {seed}: {summary.describe()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shared", type=Path, default=DATA)
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", help="write the SemEval K = 8 sets and schema for the other benchmarks")
    p.add_argument("--out", type=Path, default=RUNS)
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.shared, args.out, 8, range(5))


if __name__ == "__main__":
    main()
