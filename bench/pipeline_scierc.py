"""Benchmark: the end-to-end pipeline (NER → RE) on SciERC, scored as PURE scores it.

Trains the entity recognizer (BIO tagger) and the relation extractor (PURE-style typed markers,
every ordered pair of gold entities in a sentence, no_relation for unrelated pairs) on SciERC
train, chooses each one's learning rate and epoch on dev, builds their train memories, tunes
k/T/λ on dev, then runs NER → RE on the gold-tokenised test sentences for the four combinations
NER vanilla/kNN × RE vanilla/kNN and scores entity F1, relation F1 (boundaries) and strict
relation F1 (boundaries and entity types); PURE's published single-sentence figures stand beside
them. Throughput: documents/s and sentences/s of the pipeline on the raw text of the test
abstracts, with the share of time in NER, RE and memory search.

Run from the repository root, the training runs first (in parallel processes if you like; each
model is kept in bench/.runs/pipeline_scierc and reused), then the evaluation:
    .venv/bin/python bench/pipeline_scierc.py train-ner --lr 5e-5 --epochs 5 --threads 1
    .venv/bin/python bench/pipeline_scierc.py train-re --lr 1e-4 --epochs 2 --threads 1
    .venv/bin/python bench/pipeline_scierc.py evaluate --threads 2
`evaluate` picks, for each task, the trained model with the best dev score among those in the runs dir.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from common import RUNS, log
from knn_re import DATA, DATASETS, load
from knnie import Document, EntityRecognizer, RelationExtractor, TrainConfig, read_documents, train, train_ner
from knnie.data.schema import Span
from knnie.encoders import DEFAULT_ENCODER
from knnie.errors import DataError
from knnie.tasks.ner import tag_set

SCIERC = DATA / "scierc"
MODELS = RUNS / "pipeline_scierc"


def flat(document: Document) -> Document:
    """The document with nested entities reduced to the outermost (longest first), which BIO tags
    can hold; a tagger cannot predict the others, and evaluation still counts them."""
    try:
        document.tagged()
        return document
    except DataError:
        kept: list[Span] = []
        for span in sorted(document.entities, key=lambda s: (s.start - s.end, s.start)):
            if not any(span.overlaps(k) for k in kept):
                kept.append(span)
        return Document(document.tokens, document.text, document.char_offsets, sorted(kept, key=lambda s: s.start),
                        document.relations, document.source, document.meta)


def tagged(split: str) -> list:
    return [flat(d).tagged() for d in read_documents(SCIERC / f"{split}.json")]


def model_dir(task: str, args) -> Path:
    limit = f"-limit{args.limit}" if args.limit else ""
    return MODELS / f"{task}-lr{args.lr:g}-e{args.epochs}-s{args.seed}{limit}"


def save_run(path: Path, model, history: list[dict], seconds: float, args) -> None:
    model.save_pretrained(path, overwrite=True)
    best = max(history, key=lambda h: h["dev_f1"])
    (path / "run.json").write_text(json.dumps({
        "task": args.command, "lr": args.lr, "epochs": args.epochs, "seed": args.seed, "encoder": args.encoder,
        "history": history, "best_epoch": best["epoch"], "dev_f1": best["dev_f1"], "train_seconds": round(seconds, 1),
    }, indent=2) + "\n", encoding="utf-8")
    log(f"saved {path}: best epoch {best['epoch']}, dev F1 {100 * best['dev_f1']:.2f}")


def train_ner_run(args) -> None:
    train_set, dev_set = tagged("train")[: args.limit], tagged("dev")[: args.limit]
    recognizer = EntityRecognizer.new(tag_set(train_set), args.encoder, train_set, device="cpu")
    start = time.perf_counter()
    history = train_ner(recognizer, train_set, dev_set, TrainConfig(epochs=args.epochs, lr=args.lr, seed=args.seed))
    save_run(model_dir("ner", args), recognizer, history, time.perf_counter() - start, args)


def train_re_run(args) -> None:
    train_set, dev_set, _ = load(DATASETS["scierc"], args.limit)
    labels = sorted({ex.label for ex in train_set + dev_set})
    types = sorted({s.type for ex in train_set for s in (ex.head, ex.tail) if s.type})
    extractor = RelationExtractor.new(labels, args.encoder, entity_types=types, device="cpu")
    start = time.perf_counter()
    history = train(extractor, train_set, dev_set, TrainConfig(epochs=args.epochs, lr=args.lr, seed=args.seed))
    save_run(model_dir("re", args), extractor, history, time.perf_counter() - start, args)


def main(argv: list[str] | None = None) -> Any:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["train-ner", "train-re", "evaluate"])
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoder", default=DEFAULT_ENCODER)
    p.add_argument("--limit", type=int, default=None, help="the first N sentences / a seeded N pairs (smoke tests)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the figures are for 2 cores)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    log(f"{args.command} lr {args.lr} epochs {args.epochs} seed {args.seed}")
    return {"train-ner": train_ner_run, "train-re": train_re_run}[args.command](args)


if __name__ == "__main__":
    main()
