"""Cut the shipped demo/test sample from FewRel's val_wiki.json (MIT, THUNLP).

Maintainers only: reads ../shared/data/fewrel, writes data/sample/fewrel8/*.jsonl in knnie's
plain JSONL format. Run: python scripts/make_sample.py [--shared ../shared/data/fewrel]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

RELATIONS = ("P177", "P364", "P641", "P59", "P206", "P26", "P25", "P463")
SPLITS = (("train", 50), ("dev", 20), ("test", 20))
SEED = 13


def to_plain(inst: dict, label: str) -> dict:
    """FewRel tokens → text with character spans (first mention of each entity)."""
    keep = [i for i, t in enumerate(inst["tokens"]) if t.strip()]
    new_index = {old: new for new, old in enumerate(keep)}
    tokens = [inst["tokens"][i] for i in keep]
    starts, pos = [], 0
    for t in tokens:
        starts.append(pos)
        pos += len(t) + 1
    text = " ".join(tokens)

    def span(ent: list) -> dict:
        idx = [new_index[i] for i in ent[2][0]]
        a, b = min(idx), max(idx)
        return {"start": starts[a], "end": starts[b] + len(tokens[b])}

    return {"text": text, "head": span(inst["h"]), "tail": span(inst["t"]), "label": label}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default="../shared/data/fewrel")
    parser.add_argument("--out", default="data/sample/fewrel8")
    args = parser.parse_args()
    data = json.loads(Path(args.shared, "val_wiki.json").read_text())
    names = json.loads(Path(args.shared, "pid2name.json").read_text())
    rng = random.Random(SEED)
    out = {split: [] for split, _ in SPLITS}
    for pid in RELATIONS:
        instances = list(data[pid])
        rng.shuffle(instances)
        start = 0
        for split, n in SPLITS:
            out[split] += [to_plain(x, names[pid][0]) for x in instances[start : start + n]]
            start += n
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for split, rows in out.items():
        rng.shuffle(rows)
        with open(Path(args.out, f"{split}.jsonl"), "w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        print(split, len(rows))


if __name__ == "__main__":
    main()
