"""Benchmark: kNN-NER (Wang et al. 2022) against the plain token classifier.

What it measures (entity micro-F1, seqeval's definition, on test; k, T, λ, kernel tuned on dev)
    * CoNLL-2003 with the default encoder (uncased MiniLM-L6, 22.7M parameters — about 5×
      smaller than the paper's BERT-base): vanilla vs kNN-NER, F1 per entity type, F1 on
      test entities whose surface form never occurs in the training data used;
    * data efficiency: kNN-NER trained on 60 % of that training data with a memory of the
      same 60 %, against vanilla on 100 %;
    * Weibo (train/dev/test.txt) with the char-BiLSTM encoder trained from scratch;
    * prediction speed: words/second of vanilla (encode + argmax) and of kNN-NER (encode +
      memory search + interpolation) on the CoNLL test set, and their ratio, with the exact
      (flat) memory and with the index ``index="auto"`` picks for its size (tuned on dev like
      the exact one, plus its search depth), whose test F1 stands beside the exact one's
      (bench/knn_speed.py times the same repeatedly, encoder and kNN part apart).
    The paper's BERT-base figures stand beside ours in the "published" column of the test
    entity micro-F1 rows (100 % settings).

Run (from the repository root; datasets are read in place, never copied)
    .venv/bin/python bench/ner.py                                   # the reduced configuration
    .venv/bin/python bench/ner.py --conll-fraction 1 --epochs 1 --dev-limit 3250 --weibo-epochs 30 --seeds 1 2 3
    .venv/bin/python bench/ner.py --conll-fraction 0.01 --dev-limit 50 --test-limit 50 \\
        --weibo-epochs 1 --out-dir /tmp/bench                      # smoke test

Writes ``ner.json`` and ``ner.md`` to ``--out-dir`` (bench/results). Each finished run (setting × seed)
is kept in ``--runs-dir`` (bench/.runs) and reused by a rerun with the same configuration, so an
interrupted run resumes, and settings can run in parallel processes (``--skip``) before a final
call without ``--skip`` gathers them into one table.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common import add_runs_arguments, cached, command, log, machine, row, write_results
from knnie import EntityRecognizer, Memory, TaggedSentence, TrainConfig, read_tagged, train_ner
from knnie.data.tagged import bio_spans
from knnie.encoders.loading import DEFAULT_ENCODER
from knnie.evaluation.entities import entity_report, span_scores
from knnie.tasks.ner import tag_set

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"
PAPER = {  # Wang et al. 2022, Table 2 (BERT-base), entity micro-F1 on test
    "CoNLL-2003": {"vanilla": 91.32, "knn_ner": 91.54},
    "Weibo": {"vanilla": 67.33, "knn_ner": 68.96},
}


def subset(sentences: list[TaggedSentence], fraction: float | None = None, limit: int | None = None,
           seed: int = 13) -> list[TaggedSentence]:
    """A seeded random subset (kept in file order)."""
    n = len(sentences)
    size = min(n, limit if limit else round(n * fraction) if fraction is not None else n)
    keep = sorted(random.Random(seed).sample(range(n), size))
    return [sentences[i] for i in keep]


def share(used: list, whole: list) -> str:
    """'all N' or 'n of N (seeded subset)', for the reductions line."""
    return f"all {len(whole)}" if len(used) == len(whole) else f"{len(used)} of {len(whole)} (seeded subset)"


def surfaces(sentences: list[TaggedSentence]) -> set[str]:
    return {" ".join(s.tokens[e.start : e.end]) for s in sentences for e in bio_spans(s.tags)}


def unseen_f1(train: list[TaggedSentence], test: list[TaggedSentence], pred: list[list[str]]) -> float:
    """Entity F1 restricted to entities (gold or predicted) whose surface form is not in train."""
    seen = surfaces(train)
    keep = lambda s, spans: {e for e in spans if " ".join(s.tokens[e.start : e.end]) not in seen}  # noqa: E731
    gold = [keep(s, bio_spans(s.tags)) for s in test]
    predicted = [keep(s, bio_spans(p)) for s, p in zip(test, pred)]
    return span_scores(gold, predicted)["f1"]


def run(encoder: str, train: list[TaggedSentence], dev: list[TaggedSentence], test: list[TaggedSentence],
        config: TrainConfig, fp16: bool) -> dict[str, Any]:
    """Train, build the memory of `train`, tune on dev, score test; time prediction."""
    t0 = time.time()
    recognizer = EntityRecognizer.new(tag_set(train + dev), encoder, train)
    history = train_ner(recognizer, train, dev, config)
    log(f"  trained in {time.time() - t0:.0f}s: {history}")
    t = time.time()
    recognizer.attach_memory("train", recognizer.build_memory(train, fp16=fp16))
    log(f"  memory of {len(recognizer.memories['train'])} words in {time.time() - t:.0f}s")
    t = time.time()
    tuned = recognizer.tune(dev)
    log(f"  tuned in {time.time() - t:.0f}s: {tuned}")
    t = time.time()
    vectors, p_model = recognizer.encode(test)
    t_encode = time.time() - t
    vanilla_tags = p_model.argmax(-1)
    t = time.time()
    p = recognizer.distributions(p_model, recognizer.search(vectors))
    knn_tags = p["knn_ner"].argmax(-1)
    t_knn = time.time() - t
    exact = recognizer.memories["train"]
    recognizer.memories["train"] = Memory(exact.keys, exact.values, exact.records, recognizer.labels,
                                          recognizer.fingerprint, index="auto", fp16=fp16)
    tuned_approx = recognizer.tune(dev)
    t = time.time()
    approx_tags = recognizer.distributions(p_model, recognizer.search(vectors))["knn_ner"].argmax(-1)
    t_approx = time.time() - t
    cuts = np.cumsum([len(s.tokens) for s in test[:-1]])
    tags = {m: [[recognizer.config.tags[i] for i in part] for part in np.split(ids, cuts)]
            for m, ids in (("vanilla", vanilla_tags), ("knn_ner", knn_tags), ("knn_ner_approx", approx_tags))}
    gold = [s.tags for s in test]
    n_words = len(vanilla_tags)
    return {
        "history": history, "tuned": tuned, "tuned_approx": tuned_approx,
        "report": {m: entity_report(gold, pred) for m, pred in tags.items()},
        "unseen": {m: unseen_f1(train, test, pred) for m, pred in tags.items()},
        "speed": {"words": n_words, "vanilla_wps": n_words / t_encode, "knn_ner_wps": n_words / (t_encode + t_knn),
                  "knn_ner_approx_wps": n_words / (t_encode + t_approx),
                  "approx_index": recognizer.memories["train"].config.index},
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seeds", type=int, nargs="+", default=[42])
    ap.add_argument("--epochs", type=int, default=1, help="CoNLL epochs (MiniLM)")
    ap.add_argument("--conll-fraction", type=float, default=0.25, help="seeded share of CoNLL train used as 100%%")
    ap.add_argument("--dev-limit", type=int, default=1000, help="CoNLL dev sentences for best epoch and tuning")
    ap.add_argument("--test-limit", type=int, default=None, help="CoNLL test sentences (default: all)")
    ap.add_argument("--weibo-epochs", type=int, default=15)
    ap.add_argument("--lr", type=float, default=1e-4, help="MiniLM learning rate")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on shared cores)")
    ap.add_argument("--fp16", action="store_true", help="fp16 memory keys")
    ap.add_argument("--skip", nargs="*", default=[], choices=["conll", "conll60", "weibo"])
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    add_runs_arguments(ap)
    args = ap.parse_args(argv)
    load = os.getloadavg()[0]
    torch.set_num_threads(args.threads)
    started = time.time()
    rows: list[dict[str, Any]] = []
    runs: dict[str, list[dict]] = {}
    conll = args.data / "conll2003"
    weibo = args.data / "weibo"
    full = {s: read_tagged(conll / f"{s}.txt") for s in ("train", "dev", "test")}
    c_train = subset(full["train"], args.conll_fraction)
    c_dev = subset(full["dev"], limit=args.dev_limit)
    c_test = subset(full["test"], limit=args.test_limit)
    w_train, w_dev, w_test = (read_tagged(weibo / f"{s}.txt") for s in ("train", "dev", "test"))
    settings = {
        "conll": ("CoNLL-2003", "100% train", DEFAULT_ENCODER, c_train, c_dev, c_test, args.epochs, args.lr),
        "conll60": ("CoNLL-2003", "60% train, memory of the same 60%", DEFAULT_ENCODER,
                    subset(c_train, 0.6, seed=7), c_dev, c_test, args.epochs, args.lr),
        "weibo": ("Weibo", "100% train", "char-bilstm", w_train, w_dev, w_test, args.weibo_epochs, 2e-3),
    }
    for key, (dataset, setting, encoder, train, dev, test, epochs, lr) in settings.items():
        if key in args.skip:
            continue
        for seed in args.seeds:
            log(f"{dataset} / {setting} / {encoder} / seed {seed}: {len(train)} train sentences")
            config = TrainConfig(epochs=epochs, batch_size=args.batch_size, lr=lr, seed=seed)
            run_key = {"bench": "ner", "data": str(args.data), "setting": key, "encoder": encoder,
                       "config": vars(config), "fp16": args.fp16, "sizes": [len(train), len(dev), len(test)],
                       "conll_fraction": args.conll_fraction if key != "weibo" else None}
            runs.setdefault(key, []).append(
                cached(args.runs_dir, run_key, functools.partial(run, encoder, train, dev, test, config, args.fp16)))
        results = runs[key]
        for method, name in (("vanilla", "vanilla"), ("knn_ner", "kNN-NER")):
            published = f"{PAPER[dataset][method]} (Wang et al. 2022, BERT-base)" if key != "conll60" else ""
            rows.append(row(dataset, setting, name, "entity micro-F1 (test)",
                            [100 * r["report"][method]["f1"] for r in results], published=published))
            if key == "conll60":
                continue
            for typ in results[0]["report"]["vanilla"]["per_type"]:
                rows.append(row(dataset, setting, name, f"F1 {typ}",
                                [100 * r["report"][method]["per_type"].get(typ, {"f1": 0.0})["f1"] for r in results]))
            rows.append(row(dataset, setting, name, "F1 on entities unseen in train",
                            [100 * r["unseen"][method] for r in results]))
        if key == "conll":
            approx = f"kNN-NER, auto index ({results[0]['speed']['approx_index']}, tuned depth)"
            rows.append(row(dataset, setting, approx, "entity micro-F1 (test)",
                            [100 * r["report"]["knn_ner_approx"]["f1"] for r in results]))
            for name, vals in (("vanilla", "vanilla_wps"), ("kNN-NER", "knn_ner_wps"), (approx, "knn_ner_approx_wps")):
                rows.append(row(dataset, setting, name, "words/second", [r["speed"][vals] for r in results]))
            for name, vals in (("kNN-NER / vanilla", "knn_ner_wps"), (f"{approx} / vanilla", "knn_ner_approx_wps")):
                rows.append(row(dataset, setting, name, "speed ratio",
                                [r["speed"][vals] / r["speed"]["vanilla_wps"] for r in results]))
    reduced = [
        f"CoNLL-2003: '100%' = {share(c_train, full['train'])} train sentences, '60%' = a seeded 60% of that; "
        f"{args.epochs} epoch(s) of MiniLM (lr {args.lr}); dev: {share(c_dev, full['dev'])} sentences "
        f"(best epoch, tuning); test: {share(c_test, full['test'])} sentences",
        f"Weibo: char-BiLSTM (128-d embeddings, 2×128 LSTM) {args.weibo_epochs} epochs",
        f"{len(args.seeds)} seed(s); torch {torch.__version__} with {args.threads} thread(s) on a shared machine "
        f"(load average {load:.1f} at start)",
    ]
    report = {
        "command": command(),
        "data": {"CoNLL-2003": str(conll), "Weibo": str(weibo / "{train,dev,test}.txt")},
        "encoder": {"CoNLL-2003": DEFAULT_ENCODER, "Weibo": "char-bilstm (trained from scratch)"},
        "seeds": args.seeds, "machine": machine(), "reduced": reduced, "rows": rows,
        "runs": {k: [{f: r[f] for f in ("history", "tuned", "speed", "seconds", "reused")} for r in v]
                 for k, v in runs.items()},
        "wall_seconds": round(time.time() - started),
    }
    every = [r for v in runs.values() for r in v]
    reused = sum(r["reused"] for r in every)
    write_results("ner", report, args.out_dir, [
        f"wall time of this call: {report['wall_seconds']} s; {reused} of {len(every)} runs read back from "
        f"{args.runs_dir} (finished by earlier or parallel calls; per-run seconds in the JSON where known)"])
    return report


if __name__ == "__main__":
    main()
