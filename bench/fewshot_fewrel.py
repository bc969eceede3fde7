"""FewRel N-way K-shot (issue 14): prototypes and kNN over the support set, per encoder.

    PYTHONPATH=bench python bench/fewshot_fewrel.py [--encoder NAME=PATH ...] [--episodes 1000] [--seed 0]

Evaluation: FewRel 1.0 val_wiki (16 relations) 5-way 1-shot, 5-way 5-shot, 10-way 1-shot, 10-way 5-shot, and
FewRel 2.0 val_pubmed (10 relations) 5-way 1-shot, each on `--episodes` seeded episodes with 1 query per relation
(FewRel's protocol), support and query disjoint. kNN-over-support's k, T and kernel are chosen per setting on
`--tune-episodes` episodes of the 64 meta-training relations (bench/fewshot_data.py), never on evaluation episodes.
Every sentence is encoded once per encoder and the vectors are kept in bench/.runs/fewshot_fewrel/ (keyed by the
encoder's fingerprint), so a rerun, or a new encoder added later, encodes only what is missing. The encoders are
`NAME=PATH` pairs (a directory `knnie fewshot pretrain` wrote, or an encoder name); a path that does not exist yet
is skipped with a note, so the script can be rerun as they appear.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from common import add_runs_arguments, cached, command, log, machine, row, write_results
from fewshot_data import DATA, VAL_PUBMED, VAL_WIKI, evaluation_set, meta_train
from knnie.encoders.loading import DEFAULT_ENCODER
from knnie.io import atomic_path, read_safetensors
from knnie.tasks.fewshot import Accuracy, episode_accuracies, load_extractor, sample_episodes, tune_knn
from knnie.tasks.fewshot.support import default_params

SETTINGS = (("val_wiki", 5, 1), ("val_wiki", 5, 5), ("val_wiki", 10, 1), ("val_wiki", 10, 5), ("val_pubmed", 5, 1))
FILES = {"val_wiki": VAL_WIKI, "val_pubmed": VAL_PUBMED}
VECTORS = Path("bench/.runs/fewshot_fewrel")
# Published figures beside the prototype rows: Proto (BERT-base) meta-trained on train_wiki, accuracy (%) on the
# FewRel 1.0 test set ("on 1.0") and on FewRel 2.0's PubMed test set ("on 2.0"), Gao et al. 2019 (FewRel 2.0, EMNLP),
# Table 2; BERT-PAIR on the validation sets, thunlp/FewRel readme.md at commit 278a231
PUBLISHED = {
    ("val_wiki", 5, 1): "Proto (BERT) 80.68 ± 0.28 (test; Gao et al. 2019, Tab. 2); BERT-PAIR val 85.66 (readme)",
    ("val_wiki", 5, 5): "Proto (BERT) 89.60 ± 0.09 (test; Gao et al. 2019, Tab. 2); BERT-PAIR val 89.48 (readme)",
    ("val_wiki", 10, 1): "Proto (BERT) 71.48 ± 0.15 (test; Gao et al. 2019, Tab. 2); BERT-PAIR val 76.84 (readme)",
    ("val_wiki", 10, 5): "Proto (BERT) 82.89 ± 0.11 (test; Gao et al. 2019, Tab. 2); BERT-PAIR val 81.76 (readme)",
    ("val_pubmed", 5, 1): "Proto (BERT) 40.12 ± 0.19 (PubMed test; Gao et al. 2019, Tab. 2); BERT-PAIR val 70.70, "
                          "Proto-CNN + adversarial val 48.73 (thunlp/FewRel readme)",
}
NOTES = [
    "## Published figures and what differs",
    "",
    "* Gao et al. 2019 (FewRel 2.0, EMNLP), Table 2, Proto (BERT), meta-trained on FewRel's train_wiki (64 relations "
    "x 700): FewRel 1.0 test 5-way 1-shot 80.68 ± 0.28, 5-way 5-shot 89.60 ± 0.09, 10-way 1-shot 71.48 ± 0.15, "
    "10-way 5-shot 82.89 ± 0.11; on the PubMed test set (domain adaptation) 40.12 / 51.50 / 26.45 / 36.93. These are "
    "test-set figures (the test sets are hidden); the same paper's val figures for Proto (BERT) were not found.",
    "* thunlp/FewRel readme.md (commit 278a231), validation sets: BERT-PAIR val_wiki 85.66 / 89.48 / 76.84 / 81.76; "
    "BERT-PAIR val_pubmed 70.70 / 80.59 / 59.52 / 70.30; Proto-CNN + adversarial training val_pubmed 48.73 / 64.38 / "
    "34.82 / 50.39.",
    "* Han et al. 2018 (FewRel, EMNLP), Table 4: Prototypical Network (CNN) 69.20 / 84.79 / 56.44 / 75.55 and kNN "
    "(CNN) 54.67 / 68.77 / 41.24 / 55.87 (5-1 / 5-5 / 10-1 / 10-5).",
    "* TKRE (Guo et al., IJCAI 2025; github UESTC-GQJ/TKRE): its repository (README, scripts) states no figures "
    "and its paper's result tables were not available in the corpora searched here, so no TKRE figure is quoted. "
    "Its scripts show its protocol: K-shot supervised fine-tuning (K = 8 / 16 / 32) of RoBERTa-large after MSLM "
    "and SCL pre-training (fewshot_scripts/mslm_roberta.sh, run_roberta.sh; project TACRED), not N-way K-shot "
    "episodes; its pre-training stages are compared here on FewRel episodes instead.",
    "* What differs: no meta-training on train_wiki (not available; the 64 meta-training relations here are Wiki80's "
    "~176 sentences each, used only to choose kNN's k, T and kernel, and by `knnie fewshot pretrain`); MiniLM-L6 "
    "(22.7M parameters) instead of BERT-base (110M); no episode training at all for the 'as is' rows (the encoder "
    "is a sentence-embedding model; the entity-marker tokens are new, randomly initialised under seed 0); CPU only; "
    "1 query per relation per episode (FewRel's protocol).",
]


def pools(shared: Path, meta_per_relation: int | None = None) -> dict[str, tuple[list, list[str]]]:
    """Each dataset's examples and labels, in a fixed order (relations as the data functions give them); the
    meta-training relations' first `meta_per_relation` examples each when given (they only tune kNN)."""
    meta = {r: exs[:meta_per_relation] for r, exs in meta_train(shared).items()}
    found = {"meta_train": meta, **{name: evaluation_set(shared, f) for name, f in FILES.items()}}
    return {name: ([ex for exs in pool.values() for ex in exs], [r for r, exs in pool.items() for _ in exs])
            for name, pool in found.items()}


def vectors(encoder: str, data: dict[str, tuple[list, list[str]]], batch_size: int) -> tuple[str, dict]:
    """The encoder's fingerprint and the vectors of every dataset, encoded once and cached by fingerprint."""
    extractor = load_extractor(encoder, device="auto")
    fingerprint = extractor.fingerprint
    out = {}
    for name, (examples, _) in data.items():
        path = VECTORS / f"{fingerprint}-{name}-{len(examples)}.safetensors"
        if not path.exists():
            log(f"encoding {name} ({len(examples)} sentences) with {encoder}")
            from safetensors.numpy import save_file

            encoded = extractor.representer.encode(examples, batch_size, show_progress=True)
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                save_file({"vectors": encoded}, str(tmp))
        out[name] = read_safetensors(path, ("vectors",))["vectors"]
    return fingerprint, out


METHODS = {"prototype": "prototype", "knn": "kNN, tuned on meta-train", "knn_default": "kNN, defaults"}


def evaluate(name: str, fingerprint: str, vecs: dict, data: dict, args: argparse.Namespace) -> list[dict]:
    """The rows of one encoder: each setting, prototype and kNN over the support set (tuned on meta-train, and with
    the defaults); each row's mean, std and n are over the episodes' accuracies."""
    rows = []
    for dataset, n, k in SETTINGS:
        key = {"bench": "fewshot_fewrel", "encoder": fingerprint, "dataset": dataset, "n": n, "k": k, "q": args.q,
               "episodes": args.episodes, "seed": args.seed, "tune_episodes": args.tune_episodes,
               "meta_train": len(data["meta_train"][1])}

        def run(dataset: str = dataset, n: int = n, k: int = k) -> dict:
            meta_labels = data["meta_train"][1]
            tuning = sample_episodes(meta_labels, n, k, args.q, args.tune_episodes, args.seed + 1)
            params, tuned_accuracy = tune_knn(vecs["meta_train"], meta_labels, tuning)
            labels = data[dataset][1]
            episodes = sample_episodes(labels, n, k, args.q, args.episodes, args.seed)
            chosen = {"prototype": default_params("prototype", k), "knn": params,
                      "knn_default": default_params("knn", k)}
            return {"knn_params": asdict(params), "knn_meta_train_accuracy": tuned_accuracy,
                    **{method: episode_accuracies(vecs[dataset], labels, episodes, method.split("_")[0], p).tolist()
                       for method, p in chosen.items()}}

        log(f"{name}: {dataset} {n}-way {k}-shot")
        result = cached(args.runs_dir, key, run)
        params = result["knn_params"]
        settings = {"prototype": "nearest mean, squared L2",
                    "knn": f"k={params['k']}, T={params['temperature']:.3g}×scale, {params['kernel']}",
                    "knn_default": f"k=K={k}, T={default_params('knn', k).temperature}×scale, plain"}
        for method, label in METHODS.items():
            per_episode = np.array(result[method])
            extra = {"published": PUBLISHED[(dataset, n, k)]} if method == "prototype" else {}
            if method == "knn":
                extra["meta_train_accuracy"] = result["knn_meta_train_accuracy"]
            rows.append(row(dataset, f"{n}-way {k}-shot", f"{name}: {label} ({settings[method]})", "accuracy",
                            list(per_episode), ci95=Accuracy.of(per_episode).ci95, encoder=name, key=method, **extra))
    return rows


def summary(rows: list[dict]) -> list[str]:
    """A table of accuracy ± 95 % CI (%), one line per encoder and method, one column per setting."""
    columns = [f"{d} {n}-way {k}-shot" for d, n, k in SETTINGS]
    lines = ["## Accuracy (%) ± 95 % confidence interval over episodes", "",
             "| encoder | method | " + " | ".join(columns) + " |", "|---|---|" + "---|" * len(columns)]
    cells: dict[tuple[str, str], dict[str, str]] = {}
    for x in rows:
        cells.setdefault((x["encoder"], x["key"]), {})[f"{x['dataset']} {x['setting']}"] = \
            f"{100 * x['mean']:.2f} ± {100 * x['ci95']:.2f}"
    for (encoder, method), found in cells.items():
        lines.append(f"| {encoder} | {METHODS[method]} | " + " | ".join(found.get(c, "") for c in columns) + " |")
    return [*lines, ""]


def pretraining(path: str) -> dict:
    """How an encoder `knnie fewshot pretrain` wrote was made (its pretraining.json: base, stages, data), if it was."""
    found = Path(path) / "pretraining.json"
    if not found.is_file():
        return {}
    made = json.loads(found.read_text(encoding="utf-8"))
    stages = {name: {k: v for k, v in stage.items() if k != "history"} for name, stage in made["stages"].items()}
    return {"pretraining": {"base": made["base_encoder"], "config": made["config"], "data": made["data"],
                            "stages": stages}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", action="append", default=[],
                        help="NAME=PATH, repeatable; default: the bundled encoder as is")
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--tune-episodes", type=int, default=500)
    parser.add_argument("--q", type=int, default=1, help="queries per relation and episode")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--meta-per-relation", type=int, default=None,
                        help="encode only the first N sentences of each meta-training relation (they tune kNN alone)")
    parser.add_argument("--shared", type=Path, default=DATA)
    add_runs_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    encoders = [e.split("=", 1) for e in args.encoder] or [["as is", DEFAULT_ENCODER]]
    data = pools(args.shared, args.meta_per_relation)
    rows, used, skipped = [], {}, []
    for name, path in encoders:
        if path != DEFAULT_ENCODER and not Path(path).is_dir():
            log(f"{name}: {path} does not exist (yet); skipped")
            skipped.append(f"{name} ({path} absent)")
            continue
        fingerprint, vecs = vectors(path, data, args.batch_size)
        used[name] = {"path": path, "fingerprint": fingerprint, **pretraining(path)}
        rows += evaluate(name, fingerprint, vecs, data, args)
    write_results("fewshot_fewrel", {
        "command": command(),
        "data": {"val_wiki": f"{VAL_WIKI} (16 relations x 700)", "val_pubmed": f"{VAL_PUBMED} (10 relations x 100)",
                 "meta_train": f"64 Wiki80 relations outside val_wiki (bench/fewshot_data.py), "
                               f"{args.meta_per_relation or 'all'} sentences per relation: kNN's k, T, kernel are "
                               "tuned on its episodes only",
                 "sizes": {name: len(labels) for name, (_, labels) in data.items()}},
        "encoder": used, "skipped": skipped,
        "seeds": {"episodes": args.seed, "tuning_episodes": args.seed + 1, "marker_init": 0},
        "machine": machine(),
        "reduced": f"no meta-training on FewRel train_wiki (not available); encoders are MiniLM-L6 (22M parameters, "
                   f"384-d states, vectors 768-d), not BERT-base; the pre-trained ones as `knnie fewshot pretrain` "
                   f"made them (see each encoder's pretraining record: here 1,280 meta-training sentences, 1 epoch "
                   f"per stage); {args.episodes} episodes per setting, {args.q} query per relation; CPU, "
                   f"{args.threads} thread(s)",
        "rows": rows,
    }, extra_md=[*summary(rows), *NOTES])


if __name__ == "__main__":
    sys.exit(main())
