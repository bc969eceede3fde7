"""Benchmark: the end-to-end pipeline (NER → RE) on SciERC, scored as PURE scores it.

Trains the entity recognizer (BIO tagger) and the relation extractor (PURE-style typed markers,
every ordered pair of gold entities in a sentence, no_relation for unrelated pairs) on SciERC
train, chooses each one's learning rate and epoch on dev, builds their train memories, tunes
k/T/λ on dev, then runs NER → RE on the gold-tokenised test sentences for the four combinations
NER vanilla/kNN × RE vanilla/kNN and scores entity F1, relation F1 (boundaries) and strict
relation F1 (boundaries and entity types); PURE's published single-sentence figures stand beside
them. The four rows come from one encoding per model (vanilla and kNN distributions side by side);
`Pipeline.extract` on the first test sentences must score exactly as the kNN + kNN row does. RE on
the gold entities is scored too (--gold-entities). Throughput: documents/s and sentences/s of
`Pipeline.extract` on the raw text of the test abstracts, with the share of time in NER, RE and
memory search (timed around those calls from outside the library).

Run from the repository root, the training runs first (in parallel processes if you like; each
model is kept in bench/.runs/pipeline_scierc and reused), then the evaluation:
    .venv/bin/python bench/pipeline_scierc.py train-ner --lr 1e-4 --epochs 5     # and --lr 2e-4
    .venv/bin/python bench/pipeline_scierc.py train-re --lr 1e-4 --epochs 2 --train-fraction 0.4
    .venv/bin/python bench/pipeline_scierc.py evaluate --train-fraction 0.4 --threads 2 --gold-entities
`evaluate` picks, for each task, the trained model with the best dev score among those in the runs dir.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path
from typing import Any

import torch

from common import RESULTS, RUNS, command, log, machine, row, write_results
from knn_re import DATA, DATASETS, load
from knnie import (
    Document,
    EntityRecognizer,
    Pipeline,
    Relation,
    RelationExtractor,
    TrainConfig,
    read_documents,
    train,
    train_ner,
)
from knnie.data.schema import Span
from knnie.data.tagged import bio_spans
from knnie.encoders import DEFAULT_ENCODER
from knnie.errors import DataError
from knnie.evaluation import end_to_end_scores
from knnie.io import write_json
from knnie.pipeline import Extraction
from knnie.tasks.ner import tag_set

SCIERC = DATA / "scierc"
MODELS = RUNS / "pipeline_scierc"
METRICS = {"entity": "entity F1", "relation": "relation F1 (boundaries)",
           "strict_relation": "strict relation F1 (boundaries + entity types)"}
NAMES = {"vanilla": "vanilla", "knn_ner": "kNN", "knn_re": "kNN"}


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


def fraction(task: str, args) -> float:
    """The share of the training data a run of `task` ("re", "train-re", ...) uses: only RE is cut."""
    return args.train_fraction if task.endswith("re") else 1.0


def model_dir(task: str, args) -> Path:
    part = f"-f{fraction(task, args):g}" if fraction(task, args) < 1 else ""
    limit = f"-limit{args.limit}" if args.limit else ""
    return args.models_dir / f"{task}-lr{args.lr:g}-e{args.epochs}-s{args.seed}{part}{limit}"


def save_run(path: Path, model, history: list[dict], seconds: float, args) -> None:
    model.save_pretrained(path, overwrite=True)
    best = max(history, key=lambda h: h["dev_f1"])
    write_json(path / "run.json", {
        "task": args.command, "lr": args.lr, "epochs": args.epochs, "seed": args.seed, "encoder": args.encoder,
        "train_fraction": fraction(args.command, args), "limit": args.limit,
        "history": history, "best_epoch": best["epoch"], "dev_f1": best["dev_f1"], "train_seconds": round(seconds, 1),
    })
    log(f"saved {path}: best epoch {best['epoch']}, dev F1 {100 * best['dev_f1']:.2f}")


def train_ner_run(args) -> None:
    train_set, dev_set = tagged("train")[: args.limit], tagged("dev")[: args.limit]
    recognizer = EntityRecognizer.new(tag_set(train_set), args.encoder, train_set, device="cpu")
    start = time.perf_counter()
    history = train_ner(recognizer, train_set, dev_set, TrainConfig(epochs=args.epochs, lr=args.lr, seed=args.seed))
    save_run(model_dir("ner", args), recognizer, history, time.perf_counter() - start, args)


def re_data(args) -> tuple[list, list]:
    """RE train (a seeded `--train-fraction` of its pairs) and dev: every ordered pair of gold entities."""
    train_set, dev_set, _ = load(DATASETS["scierc"], args.limit)
    if args.train_fraction < 1:
        train_set = random.Random(0).sample(train_set, round(args.train_fraction * len(train_set)))
    return train_set, dev_set


def train_re_run(args) -> None:
    train_set, dev_set = re_data(args)
    labels = sorted({ex.label for ex in train_set + dev_set})
    types = sorted({s.type for ex in train_set for s in (ex.head, ex.tail) if s.type})
    extractor = RelationExtractor.new(labels, args.encoder, entity_types=types, device="cpu")
    start = time.perf_counter()
    history = train(extractor, train_set, dev_set, TrainConfig(epochs=args.epochs, lr=args.lr, seed=args.seed))
    save_run(model_dir("re", args), extractor, history, time.perf_counter() - start, args)


def best_run(task: str, args) -> tuple[Path, dict[str, Any]]:
    """The trained model of `task` with the best dev score among the runs on the same data as this one
    (training fraction and --limit), and every such run's record."""
    runs = {path: json.loads((path / "run.json").read_text(encoding="utf-8"))
            for path in sorted(args.models_dir.glob(f"{task}-*")) if (path / "run.json").exists()}
    runs = {path: run for path, run in runs.items()
            if (run.get("train_fraction"), run.get("limit")) == (fraction(task, args), args.limit)}
    if not runs:
        raise SystemExit(f"no trained {task} model in {args.models_dir}: run `train-{task}` first")
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
        write_json(out / "tuned.json", json.loads(json.dumps(tuned, default=float)))
        log(f"memory and tuning of {path.name}: {tuned}")
    return out, json.loads((out / "tuned.json").read_text(encoding="utf-8"))


def entities_found(recognizer: EntityRecognizer, gold: list[Document]) -> dict[str, list[Document]]:
    """For NER without and with its memory (one encoding): copies of the gold documents (their
    tokens) holding the entities found."""
    tags = recognizer.predict_tags([d.tagged(tags=False) for d in gold])
    return {method: [Document(d.tokens, entities=bio_spans(t), source=d.source, meta=d.meta)
                     for d, t in zip(gold, tags[method])] for method in ("vanilla", recognizer.knn_method)}


def relations_found(extractor: RelationExtractor, documents: list[Document]) -> dict[str, list[Document]]:
    """For RE without and with its memory (one encoding): the documents with the relations found
    between every ordered pair of their entities (no_relation dropped)."""
    pairs = [d.relation_examples() for d in documents]
    p, _ = extractor.method_distributions([ex for examples in pairs for ex in examples])
    out = {}
    for method in ("vanilla", extractor.knn_method):
        labels = iter(extractor.label_space[i] for i in p[method].argmax(-1))
        out[method] = [Document(d.tokens, entities=d.entities, relations=[
            Relation(ex.head, ex.tail, label) for ex, label in zip(examples, labels)
            if label != extractor.negative_label]) for d, examples in zip(documents, pairs)]
    return out


def as_document(gold: Document, extraction: Extraction) -> Document:
    """A pipeline's extraction of a gold-tokenised sentence as a document of token spans, to score it."""
    spans = {e.id: Span(*e.tokens, e.type) for e in extraction.entities}
    return Document(gold.tokens, entities=list(spans.values()),
                    relations=[Relation(spans[r.head], spans[r.tail], r.label) for r in extraction.relations])


class Timers:
    """Seconds spent in chosen methods of chosen objects (wrapped on the instances, not in the library)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.calls: dict[str, list] = {}

    def wrap(self, obj: Any, method: str, name: str) -> None:
        inner = getattr(obj, method)

        def timed(*a, **kw):
            start = time.perf_counter()
            try:
                return inner(*a, **kw)
            finally:
                self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
                self.calls.setdefault(name, []).append(len(a[0]) if a else 0)

        setattr(obj, method, timed)


def timed_extract(pipe: Pipeline, texts: list[str]) -> dict[str, Any]:
    """One timed `Pipeline.extract` on raw texts: documents and sentences per second, with the seconds
    in NER (its memory search included), RE (likewise) and each memory search; "other" is sentence
    splitting, tokenisation and pairing."""
    timers = Timers()
    for model, task in ((pipe.recognizer, "ner"), (pipe.extractor, "re")):
        timers.wrap(model, "predict", task)
        for memory in model.memories.values():
            timers.wrap(memory, "search", f"{task}_memory_search")
    start = time.perf_counter()
    out = pipe.extract(texts)
    seconds = time.perf_counter() - start
    for obj in (pipe.recognizer, pipe.extractor, *pipe.recognizer.memories.values(), *pipe.extractor.memories.values()):
        vars(obj).pop("predict", None), vars(obj).pop("search", None)  # unwrap
    parts = timers.seconds | {"other": seconds - timers.seconds["ner"] - timers.seconds["re"]}
    result = {"seconds": seconds, "documents": len(texts), "sentences": sum(timers.calls["ner"]),
              "pairs": sum(timers.calls["re"]), "entities": sum(len(x.entities) for x in out),
              "relations": sum(len(x.relations) for x in out),
              "documents_per_second": len(texts) / seconds, "sentences_per_second": sum(timers.calls["ner"]) / seconds,
              "seconds_in": parts, "shares": {k: v / seconds for k, v in parts.items()}}
    log(f"throughput: {result}")
    return result


def throughput(pipes: dict[str, Pipeline], texts: list[str], repeats: int) -> dict[str, Any]:
    """The fastest of `repeats` timed runs of each pipeline, the pipelines taking turns (so that a
    shared machine's load falls on all alike), after a warm-up run of each on a few texts."""
    for pipe in pipes.values():
        pipe.extract(texts[:3])
    runs: dict[str, list] = {name: [] for name in pipes}
    for _ in range(repeats):
        for name, pipe in pipes.items():
            runs[name].append(timed_extract(pipe, texts))
    return {name: min(r, key=lambda x: x["seconds"]) | {"seconds_per_run": [x["seconds"] for x in r]}
            for name, r in runs.items()}


def evaluate(args) -> dict[str, Any]:
    ner_path, ner_runs = best_run("ner", args)
    re_path, re_runs = best_run("re", args)
    ner_dir, ner_tuned = with_memory(EntityRecognizer, ner_path, tagged("train")[: args.limit],
                                     tagged("dev")[: args.limit])
    re_dir, re_tuned = with_memory(RelationExtractor, re_path, *re_data(args))
    test = read_documents(SCIERC / "test.json")[: args.limit]
    recognizer = EntityRecognizer.from_pretrained(ner_dir, device="cpu")
    extractor = RelationExtractor.from_pretrained(re_dir, device="cpu")
    scores, both_knn = {}, []
    for ner_method, documents in entities_found(recognizer, test).items():
        for re_method, predicted in relations_found(extractor, documents).items():
            name = f"NER {NAMES[ner_method]} + RE {NAMES[re_method]}"
            scores[name] = end_to_end_scores(test, predicted)
            if (ner_method, re_method) == (recognizer.knn_method, extractor.knn_method):
                both_knn = predicted
            log(f"{name}: " + ", ".join(f"{k} {100 * scores[name][k]['f1']:.2f}" for k in METRICS))
    pipe = Pipeline(recognizer, extractor)
    check = test[: args.check]
    by_pipeline = [as_document(d, x) for d, x in zip(check, pipe.extract(check))]
    same = end_to_end_scores(check, by_pipeline) == end_to_end_scores(check, both_knn[: len(check)])
    log(f"Pipeline.extract on the first {len(check)} test Documents scores as NER kNN + RE kNN above: {same}")
    abstracts: dict[str, list[str]] = {}
    for d in test:
        abstracts.setdefault(d.meta["doc_key"], []).append(" ".join(d.tokens))
    texts = [" ".join(sentences) for sentences in abstracts.values()][: args.speed_docs]
    vanilla = Pipeline(EntityRecognizer.from_pretrained(ner_dir, memories=False, device="cpu"),
                       RelationExtractor.from_pretrained(re_dir, memories=False, device="cpu"))
    speed = throughput({"NER kNN + RE kNN": pipe, "NER vanilla + RE vanilla": vanilla}, texts, args.repeats)
    report = {"ner": {"chosen": ner_path.name, "runs": ner_runs, "tuned": ner_tuned},
              "re": {"chosen": re_path.name, "runs": re_runs, "tuned": re_tuned}, "scores": scores,
              "pipeline_check": {"sentences": len(check), "same_scores": same}, "throughput": speed,
              "test": {"sentences": len(test), "abstracts": len(abstracts), "timed_abstracts": len(texts)}}
    if args.gold_entities:
        report["re_on_gold_entities"] = {NAMES[m]: end_to_end_scores(test, found)["relation"] for m, found in
                                         relations_found(extractor, [Document(d.tokens, entities=d.entities)
                                                                     for d in test]).items()}
        log(f"RE on gold entities: {report['re_on_gold_entities']}")
    write(report, args)
    return report


PURE = {  # the released single-sentence SciBERT models of PURE (W=0), test set, from the PURE README
    "entity": 66.69, "relation": 48.65, "strict_relation": 35.68}
PURE_SOURCE = "PURE SciBERT single-sentence, released models; Zhong & Chen 2021, github.com/princeton-nlp/PURE README"


def write(report: dict[str, Any], args) -> None:
    """bench/results/pipeline_scierc.{json,md}."""
    ner, re_ = report["ner"], report["re"]
    nr, rr = ner["runs"][ner["chosen"]], re_["runs"][re_["chosen"]]
    setting = (f"test {report['test']['sentences']} sentences (gold tokens); NER lr {nr['lr']:g} epoch "
               f"{nr['best_epoch']}/{nr['epochs']}; RE lr {rr['lr']:g} epoch {rr['best_epoch']}/{rr['epochs']}"
               f"{f', {args.train_fraction:g} of the RE train pairs' if args.train_fraction < 1 else ''}")
    rows = [row("SciERC", setting, name, METRICS[m], [100 * s[m]["f1"]],
                published=f"{PURE[m]} ({PURE_SOURCE})" if name == "NER vanilla + RE vanilla" else "")
            for m in METRICS for name, s in report["scores"].items()]
    rows += [row("SciERC", setting, f"RE {name} on gold entities", "relation F1 (gold entities)", [100 * s["f1"]])
             for name, s in report.get("re_on_gold_entities", {}).items()]
    speed_setting = (f"{report['test']['timed_abstracts']} test abstracts as raw text, {args.threads} torch thread(s), "
                     f"fastest of {args.repeats} runs")
    for name, t in report["throughput"].items():
        rows += [row("SciERC", speed_setting, name, "documents/second", [t["documents_per_second"]]),
                 row("SciERC", speed_setting, name, "sentences/second", [t["sentences_per_second"]])]
        rows += [row("SciERC", speed_setting, name, f"% of time in {part}", [100 * share])
                 for part, share in t["shares"].items()]
    reduced = [f"NER: lr {sorted({r['lr'] for r in ner['runs'].values()})} × up to "
               f"{max(r['epochs'] for r in ner['runs'].values())} epochs (best dev epoch kept)",
               f"RE: lr {sorted({r['lr'] for r in re_['runs'].values()})} × up to "
               f"{max(r['epochs'] for r in re_['runs'].values())} epoch(s)"
               + (f" on a seeded {args.train_fraction:g} of the training pairs (memory: the same pairs)"
                  if args.train_fraction < 1 else ""),
               "1 seed", "MiniLM-L6 (22.7M parameters) where PURE uses SciBERT (110M)",
               f"CPU only, torch {torch.__version__} with {args.threads} thread(s) on a shared 2-core machine "
               f"(load average {os.getloadavg()[0]:.1f} when written)"]
    if args.limit:
        reduced.append(f"smoke test: the first {args.limit} sentences / {args.limit} pairs per split")
    out = {"name": "pipeline_scierc", "command": command(),
           "data": {"train": "scierc/train.json", "dev": "scierc/dev.json", "test": "scierc/test.json"},
           "encoder": args.encoder, "seeds": [args.seed], "machine": machine(), "reduced": "; ".join(reduced),
           "rows": rows, **report}
    md = ["## Dev selection (vanilla models; dev F1 per epoch)", "",
          "| run | dev F1 by epoch | train seconds |", "|---|---|---|"]
    for name, r in {**ner["runs"], **re_["runs"]}.items():
        by_epoch = ", ".join(f"{100 * h['dev_f1']:.2f}" for h in r["history"])
        chosen = " (chosen)" if name in (ner["chosen"], re_["chosen"]) else ""
        md.append(f"| {name}{chosen} | {by_epoch} | {r['train_seconds']} |")
    md += ["", "## Memories (train) and k/T/λ tuned on dev", ""]
    md += [f"- {task}: built from {t['memory_size']} training {unit}; {t['memories']['train']['params']}; "
           f"dev F1 vanilla {100 * t['vanilla_f1']:.2f} → kNN {100 * t['memories']['train']['dev_f1']:.2f}"
           for task, unit, t in (("NER", "sentences", ner["tuned"]), ("RE", "pairs", re_["tuned"]))]
    md += ["", "## Precision / recall", "", "| combination | entity P / R | relation P / R | strict P / R |",
           "|---|---|---|---|"]
    md += [f"| {name} | " + " | ".join(f"{100 * s[m]['precision']:.2f} / {100 * s[m]['recall']:.2f}" for m in METRICS)
           + " |" for name, s in report["scores"].items()]
    md += ["", f"Pipeline.extract on the first {report['pipeline_check']['sentences']} test sentences (as Documents) "
           f"scores exactly as the NER kNN + RE kNN row computed from the models' distributions: "
           f"{report['pipeline_check']['same_scores']}.", ""]
    write_results("pipeline_scierc", out, args.out_dir, md)


def main(argv: list[str] | None = None) -> Any:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("command", choices=["train-ner", "train-re", "evaluate"])
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--encoder", default=DEFAULT_ENCODER)
    p.add_argument("--limit", type=int, default=None, help="the first N sentences / a seeded N pairs (smoke tests)")
    p.add_argument("--train-fraction", type=float, default=1.0,
                   help="RE: train (and build the memory) on a seeded fraction of the training pairs")
    p.add_argument("--check", type=int, default=100, help="test sentences run through Pipeline.extract as a check")
    p.add_argument("--speed-docs", type=int, default=100, help="test abstracts (as raw text) timed")
    p.add_argument("--repeats", type=int, default=2, help="timed runs of each pipeline (the fastest is kept)")
    p.add_argument("--gold-entities", action="store_true", help="also score RE on the gold test entities")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    p.add_argument("--models-dir", type=Path, default=MODELS, help="trained models are kept here and reused")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the figures are for 2 cores)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    log(args.command if args.command == "evaluate" else f"{args.command} lr {args.lr:g} epochs {args.epochs}")
    return {"train-ner": train_ner_run, "train-re": train_re_run, "evaluate": evaluate}[args.command](args)


if __name__ == "__main__":
    main()
