"""Generation with the local LLM (issue 14): synthetic examples per minute, keep-rate and drop reasons, and
explanations per minute, with Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, llama-cpp-python on the CPU). Its
runs also make the few-shot benchmarks' LLM data, in the folder `bench/fewshot_data.py --out` wrote:

* `explanations`: 4 support examples per meta-training relation of meta_train.jsonl (drawn with --seed)
  are explained → DIR/explanations_meta.jsonl.
* `synthetic`: --per-relation synthetic examples of each of the 64 meta-training relations, shown those
  support examples → DIR/synth_meta.jsonl.
* `semeval`: --per-relation synthetic examples of each SemEval relation but Other from each K-shot
  training set DIR/kshot/semeval_k8_s{i}.jsonl → DIR/kshot/semeval_k8_s{i}.synth.jsonl.

Work goes to DIR/gen/ (appended and resumable: run the same command again after an interruption); a
finished output is then copied into place atomically, so the presence of a published file means it is
complete. Every run's counts are added to DIR/gen/stats.jsonl, and bench/results/fewshot_generate.{json,md}
is written from all of them after each run:

    PYTHONPATH=bench python bench/fewshot_generate.py explanations --dir bench/.runs/fewshot --threads 1
    PYTHONPATH=bench python bench/fewshot_generate.py synthetic --dir bench/.runs/fewshot --threads 1
    PYTHONPATH=bench python bench/fewshot_generate.py semeval --dir bench/.runs/fewshot --sets 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import signal
import sys
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from common import command, log, machine, row, write_results
from fewshot_data import ARTEFACTS
from knnie import RelationExample, read_relation_types, read_relations
from knnie.io import atomic_path
from knnie.llm import load_llm
from knnie.tasks.fewshot.generate import explain_support, generate_examples, support_by_relation

LLM_NAME = "Qwen2.5-Coder-0.5B-Instruct Q4_K_M (llama-cpp-python, CPU)"


def meta_support(examples: list[RelationExample], k: int, seed: int) -> list[RelationExample]:
    """k examples of each relation, drawn with `seed`, relations in sorted order."""
    by_label: dict[str, list[RelationExample]] = defaultdict(list)
    for ex in examples:
        by_label[ex.label].append(ex)
    rng = random.Random(seed)
    return [ex for label in sorted(by_label) for ex in rng.sample(by_label[label], k)]


def publish(work: Path, target: Path, allowed: bool = True) -> None:
    """Copy a finished output into place in one rename (unless not `allowed`: --no-publish)."""
    if not allowed:
        log(f"{work} is complete (not published: --no-publish)")
        return
    with atomic_path(target) as tmp:
        shutil.copyfile(work, tmp)
    log(f"published {target}")


def counts(report: Any) -> dict[str, Any]:
    """A run's report as JSON (asdict would turn the Counter of drop reasons into counts of its pairs)."""
    return {**asdict(report), "dropped": dict(report.dropped)}


def record(stats: Path, entry: dict[str, Any]) -> None:
    stats.parent.mkdir(parents=True, exist_ok=True)
    with open(stats, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def run_meta(args: argparse.Namespace, llm: Any) -> None:
    relations = read_relation_types(args.dir / "meta_schema.json")
    support = meta_support(read_relations(args.dir / "meta_train.jsonl"), args.k, args.seed)
    support_by_relation(support, relations)
    gen = args.dir / "gen"
    common = {"dataset": "FewRel meta-train (64 relations)", "threads": args.threads, "k": args.k, "seed": args.seed}
    if args.what == "explanations":
        report = explain_support(llm, relations, support, gen / "explanations_meta.jsonl", seed=args.seed)
        record(gen / "stats.jsonl", {**common, "task": "explanations", **counts(report)})
        log(f"explanations: {report.written} written, {report.failed} failed, {report.seconds:.0f} s")
        if report.failed == 0:
            publish(gen / "explanations_meta.jsonl", args.dir / "explanations_meta.jsonl", args.publish)
        return
    report = generate_examples(llm, relations, support, args.per_relation, gen / "synth_meta.jsonl", seed=args.seed)
    record(gen / "stats.jsonl", {**common, "task": "synthetic", "target": args.per_relation, **counts(report)})
    log(f"synthetic: {report.kept} kept of {report.asked} asked, {report.seconds:.0f} s")
    if all(n >= args.per_relation for n in report.per_relation.values()):
        publish(gen / "synth_meta.jsonl", args.dir / "synth_meta.jsonl", args.publish)


def run_semeval(args: argparse.Namespace, llm: Any) -> None:
    kshot = args.dir / "kshot"
    relations = read_relation_types(kshot / "semeval_schema.json")
    wanted = [r for r in relations if r.id.lower() != "other" and r.name.lower() != "other"]
    for i in args.sets:
        support = read_relations(kshot / f"semeval_k8_s{i}.jsonl")
        support_by_relation(support, relations)
        work = args.dir / "gen" / f"semeval_k8_s{i}.synth.jsonl"
        report = generate_examples(llm, wanted, support, args.per_relation, work, seed=args.seed + i)
        record(args.dir / "gen" / "stats.jsonl", {"dataset": "SemEval-2010 K=8 (18 relations, not Other)",
                                                   "set": i, "threads": args.threads, "task": "synthetic",
                                                   "target": args.per_relation, **counts(report)})
        log(f"SemEval set {i}: {report.kept} kept of {report.asked} asked, {report.seconds:.0f} s")
        if all(n >= args.per_relation for n in report.per_relation.values()):
            publish(work, kshot / f"semeval_k8_s{i}.synth.jsonl", args.publish)


def results(stats: Path) -> dict[str, Any]:
    """Rows over every run recorded: per dataset and task, the rate per minute of LLM time, the keep-rate, and
    the share of requests dropped for each reason."""
    runs = [json.loads(line) for line in stats.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows, groups, targets = [], defaultdict(list), defaultdict(set)
    for r in runs:
        if "target" in r:
            targets[r["dataset"]].add(r["target"])
    for r in runs:
        groups[(r["dataset"], r["task"], r["threads"])].append(r)
    for (dataset, task, threads), group in groups.items():
        asked, seconds = sum(r["asked"] for r in group), sum(r["seconds"] for r in group)
        made = sum(r["kept" if task == "synthetic" else "written"] for r in group)
        if not asked:
            continue
        setting, method = f"{threads} CPU threads", LLM_NAME
        rows.append(row(dataset, setting, method, f"{task} per minute", [60 * made / seconds], made=made,
                        asked=asked, seconds=round(seconds, 1)))
        rows.append(row(dataset, setting, method, f"{task}: kept / asked", [made / asked]))
        if task == "explanations":
            triggers = sum(r["with_trigger"] for r in group)
            rows.append(row(dataset, setting, method, "explanations with a valid trigger", [triggers / max(made, 1)]))
        dropped = Counter()
        for r in group:
            dropped.update(r["dropped"])
        rows += [row(dataset, setting, method, f"{task}: dropped / asked, {reason}", [n / asked], dropped=n)
                 for reason, n in dropped.most_common()]
    return {"command": command(), "data": "DIR/meta_train.jsonl + meta_schema.json (bench/fewshot_data.py); "
            "DIR/kshot/semeval_k8_s*.jsonl (K-shot SemEval sets)", "encoder": "none (LLM: " + LLM_NAME + ")",
            "seeds": sorted({r.get("seed", 0) for r in runs}), "machine": machine(),
            "reduced": "CPU only, 1-2 threads on a 2-core machine shared with other jobs (rates are of this machine "
                       "under that load); one example per request; synthetic examples asked per relation: "
                       + "; ".join(f"{d} {sorted(v)}" for d, v in targets.items())
                       + f"; SemEval sets {sorted({r['set'] for r in runs if 'set' in r})}",
            "rows": rows, "runs": len(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["explanations", "synthetic", "semeval", "report"],
                        help="explanations / synthetic: of the meta-training relations")
    parser.add_argument("--dir", type=Path, default=ARTEFACTS, help="bench/fewshot_data.py's --out folder")
    parser.add_argument("--llm", default="local")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=4, help="support examples per relation to explain (meta)")
    parser.add_argument("--per-relation", type=int, default=None, help="synthetic examples per relation "
                        "(default: 5 for meta, 10 for semeval)")
    parser.add_argument("--sets", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--no-publish", dest="publish", action="store_false",
                        help="leave a finished output in DIR/gen (one already published is not replaced)")
    args = parser.parse_args()
    for signum in (signal.SIGINT, signal.SIGTERM):  # stop a run (in the background too) with its counts recorded
        signal.signal(signum, signal.default_int_handler)
    if args.what != "report":
        args.per_relation = args.per_relation or (10 if args.what == "semeval" else 5)
        llm = load_llm(args.llm, threads=args.threads)
        (run_semeval if args.what == "semeval" else run_meta)(args, llm)
    stats = args.dir / "gen" / "stats.jsonl"
    if not stats.exists():
        sys.exit(f"no runs recorded in {stats}")
    report = results(stats)
    write_results("fewshot_generate", report, extra_md=runs_table(stats))


def runs_table(stats: Path) -> list[str]:
    """One line per recorded run: what it made, in how long, and whether it was stopped before the end."""
    lines = ["Runs (each resumes the files of the one before; a stopped run's counts are kept):", "",
             "| dataset | task | threads | asked | made | seconds | stopped |", "|---|---|---|---|---|---|---|"]
    for line in stats.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        made = r["kept"] if r["task"] == "synthetic" else r["written"]
        lines.append(f"| {r['dataset']}{' set ' + str(r['set']) if 'set' in r else ''} | {r['task']} | "
                     f"{r['threads']} | {r['asked']} | {made} | {r['seconds']:.0f} | {r['interrupted']} |")
    return lines


if __name__ == "__main__":
    main()
