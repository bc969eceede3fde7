"""`knnie zeroshot ...`: train → predict → evaluate for relations given only by descriptions (EMMA)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from knnie.cli.common import command, console, load_relations, out, save_training, show_instance
from knnie.cli.options import BatchSize, Device, Epochs, OutDir, Overwrite, ReportJson, Seed
from knnie.cli.outputs import check_output
from knnie.data import RelationExample, RelationType, read_relation_types
from knnie.encoders import DEFAULT_ENCODER
from knnie.encoders.device import resolve_device
from knnie.io import write_json, write_jsonl
from knnie.tasks.model_dir import check_target
from knnie.tasks.training import seed_everything
from knnie.tasks.zeroshot import ZeroShotRelationExtractor, ZeroShotTrainConfig, hold_out, train_zeroshot
from knnie.tasks.zeroshot.model import CALIBRATION_RELATIONS

log = logging.getLogger(__name__)
app = typer.Typer(help="Zero-shot relation extraction: relations given by descriptions, never seen in training "
                       "(EMMA: dual-tower recall, cross-encoder, abstain).", no_args_is_help=True)
HELD_OUT = CALIBRATION_RELATIONS  # training relations held out for dev and calibration without --dev

ModelDir = Annotated[Path, typer.Argument(help="A model directory from `knnie zeroshot train`.")]
Relations = Annotated[Path, typer.Option("--relations", help="Relation descriptions: knnie's JSON/JSONL "
                                         '{"id", "name", "description"}, FewRel pid2name.json or RE-Matching\'s.')]
TopK = Annotated[int, typer.Option(min=1, help="Relations the recall stage passes to the cross-encoder.")]
Support = Annotated[Path, typer.Option(help="Labelled examples of the relations, searched beside the descriptions.")]


def load_relation_types(path: Path, what: str) -> list[RelationType]:
    relations = read_relation_types(path)
    console.print(f"{what}: {len(relations)} relations from {path}", highlight=False)
    return relations


def described(examples: list[RelationExample], relations: list[RelationType]) -> list[RelationType]:
    """The relations that label `examples` (a label missing from `relations` is refused later, naming its record)."""
    labels = {ex.label for ex in examples}
    return [r for r in relations if r.id in labels]


@app.command("train")
@command
def train_command(
    train_path: Path = typer.Option(..., "--train", help="Training data, labelled with ids of --relations."),
    relations_path: Relations = ...,
    out_dir: OutDir = ...,
    dev_path: Path = typer.Option(None, "--dev", help="Examples of held-out relations (none of them in --train): "
                                  f"picks the best epoch and calibrates abstaining. Default: {HELD_OUT} training "
                                  "relations are held out."),
    encoder: str = typer.Option(DEFAULT_ENCODER, help="Encoder name or local Hugging Face model directory."),
    epochs: Epochs = 3,
    batch_size: BatchSize = 32,
    lr: float = typer.Option(5e-5, help="Encoder learning rate (pooling and scorer weights use 1e-3)."),
    top_k: TopK = 3,
    seed: Seed = 42,
    overwrite: Overwrite = False,
    device: Device = "auto",
) -> None:
    """Train both towers (InfoNCE over descriptions) and the cross-encoder on seen relations, then
    calibrate the abstain threshold on held-out ones."""
    check_target(out_dir, overwrite)
    target = resolve_device(device)
    config = ZeroShotTrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
    relations = load_relation_types(relations_path, "relations")
    train_set = load_relations(train_path, "train")
    if dev_path is not None:
        dev_set = load_relations(dev_path, "dev")
    else:
        train_set, dev_set = hold_out(train_set, HELD_OUT, seed)
        if dev_set:
            held = ", ".join(r.id for r in described(dev_set, relations))
            console.print(f"no --dev: relations {held} ({len(dev_set)} examples) held out of training for dev "
                          "and abstain calibration", highlight=False)
            dev_path = f"{train_path}, relations {held} held out"
        else:
            log.warning("no --dev and fewer than %d training relations to hold some out: training without dev, "
                        "the abstain threshold is uncalibrated (predict with --abstain off or a number)",
                        HELD_OUT + 2)
    seed_everything(seed)  # the new head and marker embeddings too, so --seed decides the whole run
    model = ZeroShotRelationExtractor.new(encoder, top_k=top_k, device=target)
    train_relations = described(train_set, relations)
    history = train_zeroshot(model, train_set, train_relations, dev_set, described(dev_set, relations), config,
                             show_progress=True)
    model.save_pretrained(out_dir, overwrite)
    save_training(out_dir, config, history, train_path, dev_path, f"{len(train_relations)} relations",
                  "macro-F1 (held-out relations)")
    c = model.config.calibration
    if c:
        console.print(f"abstain threshold {model.config.abstain_threshold:.3f} on the fused score, calibrated on "
                      f"{', '.join(c['relations'])} ({c['instances']} instances): micro-F1 {c['micro_f1']:.4f} "
                      f"(never abstaining {c['micro_f1_never_abstaining']:.4f})", highlight=False)


@app.command("predict")
@command
def predict_command(
    model_dir: ModelDir,
    relations_path: Relations = ...,
    input: Path = typer.Option(..., "--input", help="Examples to label (labels, if any, are ignored)."),
    output: Path = typer.Option(..., "--output", help="JSONL with a prediction per input example."),
    top_k: TopK = None,
    abstain: str = typer.Option("auto", help="auto (the threshold calibrated in training), off (always answer), "
                                "or a threshold in [0, 1] on the fused score; below it the answer is none."),
    neighbours: int = typer.Option(3, min=0, help="Nearest descriptions or support examples to return."),
    support: Support = None,
    show: int = typer.Option(5, min=0, help="Print this many predictions to the terminal."),
    batch_size: BatchSize = 64,
    device: Device = "auto",
) -> None:
    """Writes {text, head, tail, prediction, score, candidates: [{id, name, recall, cross, fused}],
    neighbours} per example; prediction null with a "reason" when the model abstains or the
    entities do not fit the encoder."""
    check_output(output)
    model = ZeroShotRelationExtractor.from_pretrained(model_dir, device=device)
    relations = load_relation_types(relations_path, "relations")
    examples = load_relations(input, "input")
    support_set = load_relations(support, "support") if support else []
    predictions = model.predict(examples, relations, support_set, top_k, abstain, neighbours, batch_size,
                                show_progress=True)
    keep_cache(model, model_dir, relations)
    rows = [p.to_row(ex) for ex, p in zip(examples, predictions)]
    write_jsonl(output, rows)
    for row in rows[:show]:
        show_instance(row, f"score {row['score']:.3f}" if row["prediction"] else "", "none")
        for c in row["candidates"]:
            out.print(f"    {c['id']:<7} {c['name'][:26]:<26} recall {c['recall']:.3f}  cross {c['cross']:.3f}  "
                      f"fused {c['fused']:.3f}", highlight=False, markup=False)
    unanswered = sum(p.label is None for p in predictions)
    console.print(f"{len(rows)} predictions written to {output} ({unanswered} none)", highlight=False)


@app.command("evaluate")
@command
def evaluate_command(
    model_dir: ModelDir,
    relations_path: Relations = ...,
    data: Path = typer.Option(..., help="Test data, labelled with ids of --relations (every instance expresses one)."),
    support: Support = None,
    top_k: TopK = None,
    output: ReportJson = None,
    batch_size: BatchSize = 64,
    device: Device = "auto",
) -> None:
    """Macro P/R/F1 over the relations of the recall stage alone and of the fused decision, and
    recall@k (how often the cross-encoder is given the right relation)."""
    check_output(output)
    model = ZeroShotRelationExtractor.from_pretrained(model_dir, device=device)
    relations = load_relation_types(relations_path, "relations")
    examples = load_relations(data, "test")
    support_set = load_relations(support, "support") if support else []
    report = model.evaluate(examples, relations, support_set, top_k, batch_size, show_progress=True)
    keep_cache(model, model_dir, relations)
    table = Table(title=f"{data}: {report['instances']} instances, {report['relations']} relations")
    for col in ("stage", "macro P", "macro R", "macro F1", "accuracy"):
        table.add_column(col)
    for stage, name in (("recall", "recall only"), ("fused", "recall + cross-encoder")):
        r = report[stage]
        table.add_row(name, *(f"{100 * r[m]:.2f}" for m in ("macro_precision", "macro_recall", "macro_f1",
                                                            "accuracy")))
    out.print(table)
    at = next(key for key in report if key.startswith("recall@"))
    out.print(f"{at} {100 * report[at]:.2f}", highlight=False)
    if output:
        write_json(output, report)


def keep_cache(model: ZeroShotRelationExtractor, model_dir: Path, relations: list[RelationType]) -> None:
    """Save newly encoded description vectors into the model's cache, and say how many were reused."""
    texts = len({r.text for r in relations})
    if model.encoded_descriptions:
        model.save_cache(model_dir)
    console.print(f"descriptions: {model.encoded_descriptions} encoded, {texts - model.encoded_descriptions} "
                  f"reused from {model_dir}", highlight=False)
