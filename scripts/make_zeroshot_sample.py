"""Cut the shipped zero-shot sample from FewRel's val_wiki.json (MIT, THUNLP).

Maintainers only: reads ../shared/data/fewrel, writes data/sample/zeroshot/: train.jsonl (seen
relations), dev.jsonl (further seen relations, held out for calibration), test.jsonl (unseen relations)
in knnie's plain JSONL format with the P-id as label, relations.json (the 16 relations' names and
descriptions from pid2name.json, in knnie's description format) and README.md. Sentences of the
fewrel8 sample (also cut from val_wiki) are left out. Run: python scripts/make_zeroshot_sample.py
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from make_sample import to_plain

# (split, relations, sentences per relation); the unseen relations each have a relative among the
# seen ones (spouse: mother, child; sport: competition class, position played)
SPLITS = (
    ("train", ("P25", "P40", "P155", "P206", "P361", "P364", "P463", "P921"), 30),
    ("dev", ("P410", "P413", "P2094"), 15),
    ("test", ("P26", "P59", "P177", "P412", "P641"), 15),
)
SEED = 13
COMMIT = "278a2315d2138810a379cd8d5718914dc56e2582"  # github.com/thunlp/FewRel, as ../shared/data/fewrel/SOURCE.md says
COMMAND = "python scripts/make_zeroshot_sample.py"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default="../shared/data/fewrel")
    parser.add_argument("--exclude", default="data/sample/fewrel8", help="a sample whose sentences are left out")
    parser.add_argument("--out", default="data/sample/zeroshot")
    args = parser.parse_args()
    data = json.loads(Path(args.shared, "val_wiki.json").read_text(encoding="utf-8"))
    names = json.loads(Path(args.shared, "pid2name.json").read_text(encoding="utf-8"))
    used = {json.loads(line)["text"] for path in sorted(Path(args.exclude).glob("*.jsonl"))
            for line in path.read_text(encoding="utf-8").splitlines()}
    excluded = len(used)
    rng = random.Random(SEED)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for split, relations, n in SPLITS:
        rows = []
        for pid in relations:
            instances = list(data[pid])
            rng.shuffle(instances)
            fresh = [row for row in (to_plain(x, pid) for x in instances) if row["text"] not in used]
            rows += fresh[:n]
            used.update(row["text"] for row in fresh[:n])
        rng.shuffle(rows)
        with open(out / f"{split}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        print(split, len(rows))
    relations = [{"id": pid, "name": names[pid][0], "description": names[pid][1]}
                 for _, pids, _ in SPLITS for pid in pids]
    (out / "relations.json").write_text(json.dumps(relations, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "README.md").write_text(readme(names, excluded), encoding="utf-8")


def readme(names: dict[str, list[str]], excluded: int) -> str:
    splits = "\n".join(f"- `{split}.jsonl`: {len(pids)} relations × {n} sentences = {len(pids) * n}: "
                       + ", ".join(f"{pid} ({names[pid][0]})" for pid in pids) for split, pids, n in SPLITS)
    return f"""# Zero-shot relation extraction sample (from FewRel 1.0)

For the zero-shot demo and tests: a model learns from the seen relations of `train.jsonl` and
must recognise the unseen relations of `test.jsonl` from their descriptions alone. `dev.jsonl`
holds three further relations kept out of training, for calibration on relations the model has
not learnt from. No sentence occurs twice.

{splits}
- `relations.json`: the 16 relations as {{"id", "name", "description"}} (knnie's format, read by
  `knnie.read_relation_types`); names and descriptions from FewRel's `pid2name.json`.

Sentences are knnie's plain JSONL (`text`, `head`/`tail` character spans, end exclusive, `label` =
the Wikidata P-id): FewRel's tokens joined by spaces, each entity's first mention.

Origin: FewRel 1.0 `data/val_wiki.json` and `data/pid2name.json` of github.com/thunlp/FewRel,
commit {COMMIT}. The {excluded} sentences of `data/sample/fewrel8`
(also cut from val_wiki.json) are left out. Licence: MIT, Copyright (c) 2018 THUNLP.

Made by `{COMMAND}` (seed {SEED}) from the repository root,
with FewRel in ../shared/data/fewrel.
"""


if __name__ == "__main__":
    main()
