"""Benchmark: what the kNN part of prediction costs next to the encoder (issue #11, item 13).

For kNN-NER on CoNLL-2003 (a memory of every training word, 203,621 keys) and kNN-RE on
SemEval-2010 (a memory grown to 100,000 keys), the same trained model and the same keys are
searched by an exact (flat) index and by the index ``index="auto"`` picks for that size (HNSW),
each tuned on dev: k, T, λ on an exact search, then for the approximate index the smallest k and
the cheapest search depth within 0.0005 dev F1 of the exact best (`MemoryAugmentedModel.tune`).
On test the encoder (what the vanilla model costs) and the kNN part (search + distributions,
what kNN adds to `predict`) are timed separately, alternately, several times; medians. The speed
ratio is vanilla time / kNN total time = encoder / (encoder + kNN part); the goal is ≥ 0.9 with
test F1 within 0.1 point of the exact search.

Run: .venv/bin/python bench/knn_speed.py [--skip ner re] [--threads 1]
Writes bench/results/knn_speed.json and .md.
"""

from __future__ import annotations

import argparse
import copy
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
import torch
from memory_scale import grow
from ner import share, subset

from common import RESULTS, command, log, machine, row, write_results
from knnie import (
    EntityRecognizer,
    Memory,
    RelationExtractor,
    TrainConfig,
    read_relations,
    read_tagged,
    train,
    train_ner,
)
from knnie.encoders import DEFAULT_ENCODER
from knnie.tasks.base import MemoryAugmentedModel
from knnie.tasks.ner import tag_set

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def tune_each(front: MemoryAugmentedModel, dev: list, memories: dict[str, Memory]) -> dict[str, dict[str, Any]]:
    """Tune the model with each memory alone (as 'train'); its settings and the tuning report."""
    out = {}
    for name, memory in memories.items():
        front.memories = {"train": memory}
        start = time.perf_counter()
        report = front.tune(dev)
        out[name] = {"knn": copy.deepcopy(front.config.knn), "knn_only": copy.deepcopy(front.config.knn_only),
                     "tune_report": report, "tune_seconds": time.perf_counter() - start}
        log(f"  tuned with the {name} memory: {report['memories']['train']}")
    return out


def timed_test(front: MemoryAugmentedModel, test: list, memories: dict[str, Memory], tuned: dict[str, dict],
               score, repeats: dict[str, int]) -> dict[str, Any]:
    """Encode test, then run the kNN part with each memory, alternating, `repeats` times (fewer for
    slow memories); wall and CPU seconds of every repeat, and the test score of each method."""
    seconds: dict[str, list[float]] = {"encoder": [], **{name: [] for name in memories}}
    cpu: dict[str, list[float]] = {"encoder": [], **{name: [] for name in memories}}
    scores: dict[str, float] = {}
    loads = []

    def clock(name: str, start: tuple[float, float]) -> None:
        seconds[name].append(time.perf_counter() - start[0])
        cpu[name].append(time.process_time() - start[1])

    for r in range(max(repeats.values())):
        loads.append(os.getloadavg()[0])
        start = time.perf_counter(), time.process_time()
        vectors, p_model = front.encode(test)
        clock("encoder", start)
        scores["vanilla"] = score(p_model.argmax(-1))
        for name, memory in memories.items():
            if r >= repeats[name]:
                continue
            front.memories = {"train": memory}
            front.config.knn, front.config.knn_only = tuned[name]["knn"], tuned[name]["knn_only"]
            start = time.perf_counter(), time.process_time()
            p = front.distributions(p_model, front.search(vectors))[front.knn_method]
            clock(name, start)
            scores[name] = score(p.argmax(-1))
        log(f"  repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}s ({cpu[k][-1]:.2f} CPU s)"
                                              for k, v in seconds.items() if len(v) > r))
    return {"seconds": seconds, "cpu_seconds": cpu, "scores": scores, "loads": loads}


def rows_for(dataset: str, setting: str, unit: str, n: int, method: str, timing: dict[str, Any],
             tuned: dict[str, dict]) -> list[dict[str, Any]]:
    """Speed, ratio and F1 rows: medians of the timed repeats, one row per memory."""
    enc = statistics.median(timing["seconds"]["encoder"])
    cpu_enc = statistics.median(timing["cpu_seconds"]["encoder"])
    vanilla = "vanilla (encoder only)"
    out = [row(dataset, setting, vanilla, f"{unit}/second", [n / t for t in timing["seconds"]["encoder"]],
               median=n / enc),
           row(dataset, setting, vanilla, "test F1", [100 * timing["scores"]["vanilla"]])]
    for name in tuned:
        knn = timing["seconds"][name]
        params, report = tuned[name]["knn"]["train"], tuned[name]["tune_report"]["memories"]["train"]
        label = f"{method}, {name} (k={params['k']}" + (f", depth {params['depth']})" if params.get("depth") else ")")
        out += [row(dataset, setting, label, f"{unit}/second", [n / (enc + t) for t in knn],
                    median=n / (enc + statistics.median(knn))),
                row(dataset, setting, label, "kNN part (s, search + distributions)", knn,
                    median=statistics.median(knn)),
                row(dataset, setting, label, "speed ratio (vanilla time / kNN total time)",
                    [enc / (enc + t) for t in knn], median=enc / (enc + statistics.median(knn))),
                row(dataset, setting, label, "speed ratio, CPU time", [e / (e + t) for e, t in
                    zip(timing["cpu_seconds"]["encoder"], timing["cpu_seconds"][name])],
                    median=cpu_enc / (cpu_enc + statistics.median(timing["cpu_seconds"][name]))),
                row(dataset, setting, label, "test F1", [100 * timing["scores"][name]]),
                row(dataset, setting, label, "dev F1 (tuning)", [100 * report["dev_f1"]])]
    exact, approx = (timing["scores"][name] for name in tuned)
    out.append(row(dataset, setting, f"{method}: approximate − exact", "test F1 difference (points)",
                   [100 * (approx - exact)]))
    return out


def ner_check(args) -> tuple[list[dict], dict[str, Any], list[str]]:
    conll = args.data / "conll2003"
    full = {s: read_tagged(conll / f"{s}.txt") for s in ("train", "dev", "test")}
    train_part, dev = subset(full["train"], args.conll_fraction), subset(full["dev"], limit=args.dev_limit)
    test = subset(full["test"], limit=args.test_limit)
    log(f"CoNLL: training on {len(train_part)} sentences")
    recognizer = EntityRecognizer.new(tag_set(full["train"] + full["dev"]), DEFAULT_ENCODER, train_part)
    history = train_ner(recognizer, train_part, dev, TrainConfig(epochs=1, batch_size=32, lr=1e-4, seed=args.seed))
    flat = recognizer.build_memory(full["train"], index="flat")
    approx = Memory(flat.keys, flat.values, flat.records, recognizer.labels, recognizer.fingerprint, index="auto")
    memories = {"exact (flat)": flat, f"auto → {approx.config.index}": approx}
    log(f"  memory of {len(flat)} words; auto picked {approx.config.index}")
    tuned = tune_each(recognizer, dev, memories)
    score_fn = recognizer.score_fn(test)
    timing = timed_test(recognizer, test, memories, tuned, lambda pred: float(score_fn(pred[None])[0]),
                        {next(iter(memories)): args.flat_repeats, list(memories)[1]: args.repeats})
    n_words = sum(len(s.tokens) for s in test)
    setting = f"memory of all {len(flat):,} train words"
    rows = rows_for("CoNLL-2003", setting, "words", n_words, "kNN-NER", timing, tuned)
    reduced = (f"CoNLL-2003: the tagger is trained 1 epoch on {share(train_part, full['train'])} train sentences "
               f"(seed {args.seed}, lr 1e-4), the memory holds every word of all {len(full['train'])}; dev: "
               f"{share(dev, full['dev'])} sentences (tuning); test: {share(test, full['test'])} sentences, "
               f"{n_words} words")
    return rows, {"history": history, "tuned": tuned, "timing": timing}, [reduced]


def re_check(args) -> tuple[list[dict], dict[str, Any], list[str]]:
    semeval = args.data / "semeval2010" / "opennre"
    full_train, dev, test = (read_relations(semeval / f"{s}.txt") for s in ("train", "dev", "test"))
    dev, test = dev[: args.re_eval_limit], test[: args.re_eval_limit]
    train_part = [full_train[i] for i in sorted(random.Random(0).sample(range(len(full_train)), args.re_train_limit))]
    labels = sorted({ex.label for ex in full_train + dev})
    extractor = RelationExtractor.new(labels)
    log(f"SemEval: training on {len(train_part)} examples")
    history = train(extractor, train_part, dev, TrainConfig(epochs=1, lr=1e-4, seed=args.seed))
    base = extractor.build_memory(full_train, index="flat")
    # grow to the memory size with noisy copies (labels copied), as bench/memory_scale.py does
    d_nn = base.search(base.keys[:500], 2)[0][:, 1]
    sigma = args.noise * float(np.sqrt(np.median(d_nn))) / np.sqrt(base.config.dim)
    source = np.arange(args.re_memory_size) % len(base)
    keys = grow(base.keys, args.re_memory_size, sigma, np.random.default_rng(0))
    keys[: len(base)] = base.keys  # the real vectors stay as they are
    records = [{"copy_of": int(i)} for i in source]
    flat = Memory(keys, base.values[source], records, labels, extractor.fingerprint, index="flat")
    approx = Memory(keys, base.values[source], records, labels, extractor.fingerprint, index="auto")
    memories = {"exact (flat)": flat, f"auto → {approx.config.index}": approx}
    tuned = tune_each(extractor, dev, memories)
    score_fn = extractor.score_fn(extractor.label_ids(test))
    timing = timed_test(extractor, test, memories, tuned, lambda pred: float(score_fn(pred[None])[0]),
                        {name: args.repeats for name in memories})
    setting = f"memory of {len(flat):,} keys ({len(base)} train vectors + noisy copies)"
    rows = rows_for("SemEval-2010", setting, "examples", len(test), "kNN-RE", timing, tuned)
    reduced = (f"SemEval-2010: the extractor is trained 1 epoch on a seeded {len(train_part)} of {len(full_train)} "
               f"train examples (seed {args.seed}, lr 1e-4); the memory holds the relation vectors of all "
               f"{len(full_train)} train examples plus noisy copies (Gaussian, {args.noise} × the median "
               f"nearest-neighbour distance spread over the dimensions; labels copied) up to {len(flat):,} keys; "
               f"dev: the first {len(dev)} (tuning); test: the first {len(test)}; F1 is micro-F1 without the "
               "negative label")
    return rows, {"history": history, "tuned": tuned, "timing": timing}, [reduced]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--conll-fraction", type=float, default=0.25, help="seeded share of CoNLL train the tagger sees")
    ap.add_argument("--dev-limit", type=int, default=1000, help="CoNLL dev sentences for tuning")
    ap.add_argument("--test-limit", type=int, default=None, help="CoNLL test sentences (default: all)")
    ap.add_argument("--re-train-limit", type=int, default=2000, help="SemEval train examples the extractor sees")
    ap.add_argument("--re-memory-size", type=int, default=100_000)
    ap.add_argument("--re-eval-limit", type=int, default=None, help="SemEval dev and test examples (default: all)")
    ap.add_argument("--noise", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=3, help="timed repeats (encoder and approximate search)")
    ap.add_argument("--flat-repeats", type=int, default=2, help="timed repeats of the exact CoNLL search (slow)")
    ap.add_argument("--threads", type=int, default=1, help="torch and FAISS threads")
    ap.add_argument("--skip", nargs="*", default=[], choices=["ner", "re"])
    ap.add_argument("--out-dir", type=Path, default=RESULTS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    started = time.time()
    rows, runs, reduced = [], {}, []
    for name, check in (("ner", ner_check), ("re", re_check)):
        if name not in args.skip:
            r, runs[name], red = check(args)
            rows += r
            reduced += red
    loads = [x for run in runs.values() for x in run["timing"]["loads"]]
    reduced.append(f"torch {torch.__version__} and FAISS {faiss.__version__} with {args.threads} thread(s) each; "
                   f"{args.repeats} timed repeats ({args.flat_repeats} of the exact CoNLL search), encoder and kNN "
                   f"part alternating; shared machine, load average {min(loads):.1f}–{max(loads):.1f} at the repeats")
    report = {"command": command(), "data": str(args.data), "encoder": DEFAULT_ENCODER, "seeds": [args.seed],
              "machine": machine(), "reduced": reduced, "rows": rows, "runs": runs,
              "wall_seconds": round(time.time() - started)}
    write_results("knn_speed", report, args.out_dir, [
        "mean/std over the timed repeats (the JSON's rows carry the median, used for the ratio: encoder median / "
        "(encoder median + kNN-part median)). CPU time (time.process_time, one thread) moves less with the other "
        "processes on these shared cores than wall time; the CPU-time ratio pairs each repeat's encoder and kNN part. "
        "F1 rows come from one model; exact and approximate search share "
        "its keys, so their F1 difference is the approximation's effect alone."])
    return report


if __name__ == "__main__":
    main()
