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
from knnie import Document, EntityRecognizer, Relation, RelationExtractor, TrainConfig, read_documents, train, train_ner
from knnie.data.schema import Span
from knnie.encoders import DEFAULT_ENCODER
from knnie.errors import DataError
from knnie.evaluation import end_to_end_scores
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


def best_run(task: str, limit: int | None) -> tuple[Path, dict[str, Any]]:
    """The trained model of `task` (of the smoke runs with `limit`) with the best dev score, and every run's record."""
    runs = {path: json.loads((path / "run.json").read_text(encoding="utf-8"))
            for path in sorted(MODELS.glob(f"{task}-*")) if (path / "run.json").exists()
            and ("limit" in path.name) == bool(limit) and path.name.endswith(f"-limit{limit}" if limit else "")}
    if not runs:
        raise SystemExit(f"no trained {task} model in {MODELS}: run `{task.replace('ner', 'train-ner')}` first")
    best = max(runs, key=lambda path: runs[path]["dev_f1"])
    return best, {path.name: runs[path] for path in runs}


def with_memory(cls, path: Path, train_set: list, dev_set: list) -> tuple[Path, dict[str, Any]]:
    """The model of `path` with a memory of its training data, k/T/λ tuned on dev, saved (and
    reused) beside it; returns its directory and the tuning report."""
    out = path.parent / f"{path.name}-memory"
    if not (out / "tuned.json").exists():
        model = cls.from_pretrained(path, device="cpu")
        start = time.perf_counter()
        model.attach_memory("train", model.build_memory(train_set))
        built = time.perf_counter() - start
        tuned = model.tune(dev_set) | {"memory_seconds": round(built, 1), "memory_size": len(train_set)}
        model.save_pretrained(out, overwrite=True)
        (out / "tuned.json").write_text(json.dumps(tuned, indent=2, default=float) + "\n", encoding="utf-8")
        log(f"memory and tuning of {path.name}: {tuned}")
    return out, json.loads((out / "tuned.json").read_text(encoding="utf-8"))


def extract(recognizer: EntityRecognizer, extractor: RelationExtractor, gold: list[Document]) -> list[Document]:
    """NER then RE on copies of the gold documents (their tokens only)."""
    documents = [Document(d.tokens, source=d.source, meta=d.meta) for d in gold]
    recognizer.predict_documents(documents)
    pairs = [d.relation_examples() for d in documents]
    predictions = iter(extractor.predict([ex for examples in pairs for ex in examples], neighbours=0))
    for d, examples in zip(documents, pairs):
        d.relations = [Relation(ex.head, ex.tail, p.label) for ex, p in zip(examples, predictions)
                       if p.label not in (None, extractor.negative_label)]
    return documents


def evaluate(args) -> dict[str, Any]:
    ner_path, ner_runs = best_run("ner", args.limit)
    re_path, re_runs = best_run("re", args.limit)
    ner_dir, ner_tuned = with_memory(EntityRecognizer, ner_path, tagged("train")[: args.limit],
                                     tagged("dev")[: args.limit])
    re_train, re_dev, _ = load(DATASETS["scierc"], args.limit)
    re_dir, re_tuned = with_memory(RelationExtractor, re_path, re_train, re_dev)
    test = read_documents(SCIERC / "test.json")[: args.limit]
    scores = {}
    for ner_knn in (False, True):
        recognizer = EntityRecognizer.from_pretrained(ner_dir, memories=ner_knn, device="cpu")
        for re_knn in (False, True):
            extractor = RelationExtractor.from_pretrained(re_dir, memories=re_knn, device="cpu")
            name = f"NER {'kNN' if ner_knn else 'vanilla'} + RE {'kNN' if re_knn else 'vanilla'}"
            scores[name] = end_to_end_scores(test, extract(recognizer, extractor, test))
            log(f"{name}: " + ", ".join(f"{k} {100 * scores[name][k]['f1']:.2f}"
                                        for k in ("entity", "relation", "strict_relation")))
    return {"ner": {"chosen": ner_path.name, "runs": ner_runs, "tuned": ner_tuned},
            "re": {"chosen": re_path.name, "runs": re_runs, "tuned": re_tuned}, "scores": scores}


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
    return {"train-ner": train_ner_run, "train-re": train_re_run, "evaluate": evaluate}[args.command](args)


if __name__ == "__main__":
    main()
