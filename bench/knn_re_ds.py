"""Benchmark: kNN-RE with a distantly supervised (DS) memory, no retraining (paper Figure 3
and the i2b2 DS protocol).

Settings
* fewrel-pubmed — a real DS setting. Labelled data = FewRel 2.0 val_pubmed (10 UMLS relations
  × 100), split per relation 50/25/25 into train/dev/test with seed 0. KB = the (head, relation,
  tail) names of the train split only. Raw text = the 2,500 pubmed_unsupervised sentences
  (labels never used) minus every sentence that occurs in dev or test. The DS memory is built
  by knnie's DS builder (`knnie.distant`).
* wiki80-1 / wiki80-10 — a KB-matched memory: KB = triples of the Wiki80 10 % split; raw text
  = every Wiki80/FewRel-wiki sentence outside dev and test (cp_train_0.1 and FewRel val_wiki),
  labels removed. The classifier trains on the 1 % or 10 % split.
Rows: vanilla, kNN-only (λ = 1, train memory), kNN-RE with the train memory, with the DS memory, and both (α-mix); all
settings (k, T, λ, kernel, α) chosen on dev; the same trained model per seed for all rows.

Run: .venv/bin/python bench/knn_re_ds.py --setting fewrel-pubmed --seeds 0 1 2
Writes bench/results/knn_re_ds_<setting>.json and .md. Each finished seed is kept in
bench/.runs and reused by a rerun with the same configuration (resume; parallel seeds).
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from common import RESULTS, add_runs_arguments, cached, command, log, machine, row, write_results
from knn_re import DATA, DATASETS, WAN
from knn_re import load as load_wiki80
from knnie import NO_RELATION, RelationExample, RelationExtractor, TrainConfig, read_relations, train
from knnie.distant import DSSummary, Triple, build_ds, iter_documents
from knnie.encoders import DEFAULT_ENCODER
from knnie.evaluation.relations import relation_report

SPLIT_SEED = 0
METHODS = {"vanilla": "vanilla (classifier)", "knn": "kNN-only (λ=1), train memory",
           "train": "kNN-RE, train memory", "ds": "kNN-RE, DS memory", "mix": "kNN-RE, train + DS memories (α-mix)"}


def key(tokens: list[str]) -> str:
    """Sentence identity across tokenisations: lower-case characters without spaces."""
    return "".join(tokens).lower()


def fewrel_pubmed(limit: int | None) -> tuple[list, list, list, list[Triple], list[list[str]]]:
    data = json.loads((DATA / "fewrel" / "val_pubmed.json").read_text())
    rng = random.Random(SPLIT_SEED)
    splits: list[list[RelationExample]] = [[], [], []]
    triples = []
    path = DATA / "fewrel" / "val_pubmed.json"
    examples = {e.source: e for e in read_relations(path)}
    for rel, instances in data.items():
        order = list(range(len(instances)))
        rng.shuffle(order)
        for split, idx in enumerate((order[:50], order[50:75], order[75:])):
            splits[split] += [examples[f"{path}:{rel}[{i}]"] for i in idx]
            if split == 0:
                triples += [Triple(instances[i]["h"][0], rel, instances[i]["t"][0]) for i in idx]
    raw = [x["tokens"] for x in json.loads((DATA / "fewrel" / "pubmed_unsupervised.json").read_text())]
    if limit:
        splits = [s[:limit] for s in splits]
    return *splits, triples, raw


def wiki80(setting: str, limit: int | None) -> tuple[list, list, list, list[Triple], list[list[str]]]:
    train_set, dev_set, test_set = load_wiki80(DATASETS[setting], limit)
    kb_split = load_wiki80(DATASETS["wiki80-10"], limit)[0]
    triples = [Triple(ex.mention(ex.head), ex.label, ex.mention(ex.tail)) for ex in kb_split]
    val_wiki = [x["tokens"] for v in json.loads((DATA / "fewrel" / "val_wiki.json").read_text()).values() for x in v]
    raw = [ex.tokens for ex in kb_split] + val_wiki
    return train_set, dev_set, test_set, triples, raw


def build_ds_examples(triples: list[Triple], raw: list[list[str]], held_out: set[str], out: Path
                      ) -> tuple[list[RelationExample], DSSummary, int]:
    """Run the DS builder over the raw sentences that are not in dev or test."""
    kept = [t for t in raw if key(t) not in held_out]
    corpus = out / "raw.jsonl"
    corpus.write_text("".join(json.dumps({"text": " ".join(t)}) + "\n" for t in kept))
    summary = DSSummary()
    rows = list(build_ds(triples, iter_documents(str(corpus), summary), summary))
    (out / "ds.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return (read_relations(out / "ds.jsonl") if rows else []), summary, len(raw) - len(kept)


def agreement(ds: list[RelationExample], train_set: list[RelationExample]) -> dict[str, Any]:
    """Where a DS sentence is also a labelled train sentence, how often the labels agree."""
    gold = {}
    for ex in train_set:
        gold.setdefault(key(ex.tokens), set()).add(ex.label)
    shared = [ex for ex in ds if key(ex.tokens) in gold]
    agree = sum(ex.label in gold[key(ex.tokens)] for ex in shared)
    return {"ds_sentences_also_in_train": len(shared), "label_agrees": agree,
            "agreement": agree / len(shared) if shared else None}


def run_seed(seed: int, train_set, dev_set, test_set, ds_set, args) -> dict[str, Any]:
    labels = sorted({ex.label for ex in train_set + dev_set})
    extractor = RelationExtractor.new(labels)
    train(extractor, train_set, dev_set, TrainConfig(epochs=args.epochs, lr=args.lr, seed=seed))
    extractor.attach_memory("train", extractor.build_memory(train_set))
    known = [ex for ex in ds_set if ex.label in labels]
    extractor.attach_memory("ds", extractor.build_memory(known))
    tuned = extractor.tune(dev_set)
    vectors, p_model = extractor.encode(test_set)
    searches = extractor.search(vectors)
    p = {"vanilla": p_model, "knn": extractor.memory_distributions(p_model, searches, knn_only=True)["train"],
         **extractor.memory_distributions(p_model, searches),
         "mix": extractor.distributions(p_model, searches)["knn_re"]}
    gold = [ex.label for ex in test_set]
    reports = {m: relation_report(gold, [labels[i] for i in q.argmax(-1)], NO_RELATION) for m, q in p.items()}
    log(f"seed {seed}: " + ", ".join(f"{m} {100 * r['micro_f1']:.2f}" for m, r in reports.items()))
    return {"seed": seed, "tuned": tuned, "test_micro_f1": {m: r["micro_f1"] for m, r in reports.items()}}


def mix_alpha(mix: dict) -> float:
    """α, the weight of the train memory in the tuned mix (runs cached before N-memory mixing stored it as alpha)."""
    return mix["alpha"] if "alpha" in mix else mix.get("weights", {}).get("train", np.nan)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--setting", choices=["fewrel-pubmed", "wiki80-1", "wiki80-10"], required=True)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--limit", type=int, default=None, help="first N per split (smoke tests)")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    add_runs_arguments(p)
    args = p.parse_args(argv)
    loaded = fewrel_pubmed(args.limit) if args.setting == "fewrel-pubmed" else wiki80(args.setting, args.limit)
    train_set, dev_set, test_set, triples, raw = loaded
    held_out = {key(ex.tokens) for ex in dev_set + test_set}
    with tempfile.TemporaryDirectory() as tmp:
        ds_set, summary, dropped = build_ds_examples(triples, raw, held_out, Path(tmp))
    log(f"{len(ds_set)} DS examples from {summary.sentences} sentences ({dropped} raw sentences in dev/test dropped)")
    run_key = {"bench": "knn_re_ds", "setting": args.setting, "epochs": args.epochs, "lr": args.lr,
               "limit": args.limit, "sizes": [len(train_set), len(dev_set), len(test_set), len(ds_set)]}
    runs = [cached(args.runs_dir, run_key | {"seed": s},
                   functools.partial(run_seed, s, train_set, dev_set, test_set, ds_set, args)) for s in args.seeds]
    name = {"fewrel-pubmed": "FewRel-PubMed", "wiki80-1": "Wiki80 1%", "wiki80-10": "Wiki80 10%"}[args.setting]
    memory = "DS memory" if args.setting == "fewrel-pubmed" else "KB-matched memory (10 % KB, not hand-labelled)"
    setting = f"train {len(train_set)}, {memory}: {len(ds_set)} examples; {args.epochs} epochs"
    published = {"wiki80-1": {"vanilla": f"PURE 31.96 ({WAN})", "ds": f"kNN-RE DS 74.31 ({WAN})"}}.get(
        args.setting, {})
    notes = [DATASETS[args.setting].note] if args.setting in DATASETS and DATASETS[args.setting].note else []
    rows = [row(name, setting, METHODS[m], "test micro-F1", [100 * r["test_micro_f1"][m] for r in runs],
                published=published.get(m, "")) for m in METHODS]
    report = {
        "name": f"knn_re_ds_{args.setting}", "command": command(),
        "data": {"sizes": [len(train_set), len(dev_set), len(test_set)], "kb_triples": len(triples),
                 "raw_sentences": len(raw), "raw_in_dev_or_test_dropped": dropped, "split_seed": SPLIT_SEED},
        "encoder": DEFAULT_ENCODER, "seeds": args.seeds, "machine": machine(),
        "reduced": f"{args.epochs} epochs" + (f"; first {args.limit} per split" if args.limit else ""),
        "ds": {"examples": len(ds_set), "sentences_read": summary.sentences,
               "per_relation": dict(summary.per_relation), "ambiguous_skipped": summary.skipped_ambiguous,
               "duplicates": summary.duplicates, **agreement(ds_set, train_set)},
        "rows": rows, "per_seed": runs,
        "mean_alpha": float(np.mean([mix_alpha(r["tuned"].get("mix", {})) for r in runs])),
    }
    write_results(report["name"], report, args.out_dir, [f"DS build: {json.dumps(report['ds'])}", "", *notes])
    return report


if __name__ == "__main__":
    main()
