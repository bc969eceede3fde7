"""`knnie fewshot ...`: few-shot relation extraction (TKRE): classify among relations given by K examples
each (`predict`), N-way K-shot evaluation (`evaluate`), LLM explanations and synthetic examples (`generate`),
two-stage pre-training of an encoder (`pretrain`), and K-shot training sets for the supervised protocol (`sample`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from knnie.cli.common import command, console, load_relations, out, show_predictions
from knnie.cli.options import BatchSize, Device, ReportJson, Seed
from knnie.cli.outputs import check_output
from knnie.cli.zeroshot import load_relation_types
from knnie.data import read_relations
from knnie.encoders import DEFAULT_ENCODER
from knnie.errors import KnnieError
from knnie.io import write_json, write_jsonl
from knnie.llm import load_llm
from knnie.llm.load import SPECS
from knnie.memory.tuner import KnnParams
from knnie.tasks.fewshot import (
    METHODS,
    Accuracy,
    SupportSet,
    default_params,
    episode_accuracies,
    explain_support,
    generate_examples,
    load_extractor,
    sample_episodes,
    sample_kshot,
    support_by_relation,
    tune_knn,
)

app = typer.Typer(help="Few-shot relation extraction: relations given by a few labelled examples each (a support "
                       "set, searched as a memory); N-way K-shot evaluation.", no_args_is_help=True)

KnnK = Annotated[int | None, typer.Option("--knn-k", min=1, help="kNN: support examples that vote (default: K).")]
Temperature = Annotated[float | None, typer.Option(
    min=0.0, help="Softmax temperature; for kNN in units of the support set's scale (median distance of a support "
                  "example to its nearest other one). Default: kNN 0.1, prototype 1.")]


def chosen_params(method: str, shots: int, knn_k: int | None, temperature: float | None,
                  kernel: str = "plain") -> KnnParams:
    """The defaults of `method` for K = `shots`, with what the user gave instead."""
    if method not in METHODS:
        raise KnnieError(f"unknown few-shot method '{method}'; choose one of {', '.join(METHODS)}")
    base = default_params(method, shots)
    return KnnParams(k=knn_k or base.k, temperature=base.temperature if temperature is None else temperature, lam=1.0,
                     kernel=kernel if method == "knn" else base.kernel)


@app.command("predict")
@command
def predict_command(
    model_or_encoder: str = typer.Argument(..., help="A knnie model directory (its encoder is used), an encoder "
                                           "directory (e.g. from `knnie fewshot pretrain`) or an encoder name."),
    support: Path = typer.Option(..., help="Labelled examples of the relations (any format `knnie train` reads)."),
    input: Path = typer.Option(..., "--input", help="Examples to label (labels, if any, are ignored)."),
    output: Path = typer.Option(..., "--output", help="JSONL with a prediction per input example."),
    neighbours: int = typer.Option(3, min=0, help="Nearest support examples returned with each prediction."),
    method: str = typer.Option("knn", help=f"{' | '.join(METHODS)}: kNN over the support set, or the nearest "
                                          "relation prototype (mean support vector)."),
    shots: int = typer.Option(None, "--k", min=1, help="K-shot: use the first K support examples of each relation "
                              "(fewer is an error). Default: all of them."),
    knn_k: KnnK = None,
    temperature: Temperature = None,
    schema: Path = typer.Option(None, help="Relation names and descriptions ({\"id\", \"name\", \"description\"}; "
                                "pid2name.json), shown with each prediction; every support label must be one of them."),
    batch_size: BatchSize = 64,
    show: int = typer.Option(5, min=0, help="Print this many predictions to the terminal."),
    seed: Seed = 0,
    device: Device = "auto",
) -> None:
    """Writes {text, head, tail, prediction, probability, neighbours[, relation: {id, name, description}]} per
    example; the neighbours are the nearest support examples. An example whose entities do not fit the
    encoder gets prediction null and a "reason"."""
    check_output(output)
    params = chosen_params(method, shots or 1, knn_k, temperature)  # refuses a bad method or setting early
    relations = load_relation_types(schema, "schema") if schema is not None else []
    examples = load_relations(support, "support")
    queries = load_relations(input, "input")
    extractor = load_extractor(model_or_encoder, device, seed)
    support_set = SupportSet.build(extractor, examples, shots, str(support), relations, batch_size, True)
    params = chosen_params(method, support_set.shots, knn_k, temperature)
    console.print(f"support: {len(support_set.memory)} examples of {len(support_set.memory.labels)} relations "
                  f"(K = {support_set.shots}); {method}" + (f", k = {params.k}, T = {params.temperature}"
                                                             if method == "knn" else ""), highlight=False)
    predictions = support_set.predict(queries, method, params, neighbours, batch_size, show_progress=True)
    rows = [support_set.row(ex, p) for ex, p in zip(queries, predictions)]
    write_jsonl(output, rows)
    show_predictions(rows[:show])
    console.print(f"{len(rows)} predictions written to {output}", highlight=False)


@app.command("evaluate")
@command
def evaluate_command(
    encoder: str = typer.Option(..., help="An encoder directory or name, or a knnie model directory."),
    data: Path = typer.Option(..., help="Labelled examples: FewRel JSON {relation: instances} or any format "
                              "`knnie train` reads."),
    n: int = typer.Option(5, "--n", min=2, help="N: relations per episode."),
    k: int = typer.Option(1, "--k", min=1, help="K: support examples per relation."),
    q: int = typer.Option(1, "--q", min=1, help="Q: queries per relation."),
    episodes: int = typer.Option(1000, min=1, help="Episodes sampled (seeded)."),
    method: str = typer.Option("both", help=f"{' | '.join(METHODS)} | both"),
    tune_on: Path = typer.Option(None, help="Choose kNN's k, T and kernel on episodes of this labelled file "
                                 "(other relations than --data's, e.g. meta-training ones) instead of the defaults."),
    knn_k: KnnK = None,
    temperature: Temperature = None,
    seed: Seed = 0,
    batch_size: BatchSize = 64,
    report_json: ReportJson = None,
    device: Device = "auto",
) -> None:
    """Accuracy over N-way K-shot episodes with its 95 % confidence interval. Every sentence is encoded once;
    each episode's support set is a small memory."""
    check_output(report_json)
    methods = list(METHODS) if method == "both" else [method]  # `chosen_params` refuses an unknown one
    params = {m: chosen_params(m, k, knn_k, temperature) for m in methods}
    pool = read_relations(data, negatives=False)
    labels = [ex.label for ex in pool]
    sampled = sample_episodes(labels, n, k, q, episodes, seed, str(data))  # refuses too few examples before encoding
    console.print(f"{data}: {len(pool)} examples of {len(set(labels))} relations; {episodes} episodes "
                  f"{n}-way {k}-shot, Q = {q} per relation", highlight=False)
    extractor = load_extractor(encoder, device, seed)
    report = {"data": str(data), "encoder": encoder, "n": n, "k": k, "q": q, "seed": seed, "methods": {}}
    if "knn" in params and tune_on is not None:
        meta = read_relations(tune_on, negatives=False)
        meta_labels = [ex.label for ex in meta]
        tuning = sample_episodes(meta_labels, n, k, q, episodes, seed + 1, str(tune_on))
        params["knn"], tuned = tune_knn(extractor.representer.encode(meta, batch_size, show_progress=True),
                                        meta_labels, tuning)
        report["tuned_on"] = {"data": str(tune_on), "accuracy": tuned}
    vectors = extractor.representer.encode(pool, batch_size, show_progress=True)
    table = Table(title=f"{data}: {n}-way {k}-shot, {episodes} episodes")
    for column in ("method", "settings", "accuracy", "95% CI"):
        table.add_column(column)
    for name, p in params.items():
        acc = Accuracy.of(episode_accuracies(vectors, labels, sampled, name, p))
        settings = f"k={p.k}, T={p.temperature:.3g}×scale, {p.kernel}" if name == "knn" else "squared L2"
        report["methods"][name] = {"params": vars(p), "accuracy": acc.mean, "ci95": acc.ci95,
                                   "episodes": acc.episodes}
        table.add_row(name, settings, f"{acc.mean:.4f}", f"± {acc.ci95:.4f}")
    out.print(table)
    if report_json is not None:
        write_json(report_json, report)


@app.command("pretrain")
@command
def pretrain_command(
    data: Path = typer.Option(..., help="Labelled relation examples (any supported format) of many relations."),
    out: Path = typer.Option(..., "--out", help="Encoder directory to write (Hugging Face, with its tokenizer)."),
    synthetic: Path = typer.Option(None, help="Synthetic examples (`knnie fewshot generate`), added to both stages."),
    explanations: Path = typer.Option(None, help="Explanations (`knnie fewshot generate`): their triggers are the "
                                                 "relation spans MSLM masks (else the words between the entities)."),
    encoder: str = typer.Option(DEFAULT_ENCODER, help="Encoder name or local Hugging Face model directory to start "
                                                      "from."),
    mslm_epochs: int = typer.Option(3, min=0, help="Epochs of stage 1, masked span language modelling (0: skip)."),
    scl_epochs: int = typer.Option(3, min=0, help="Epochs of stage 2, span-level contrastive learning (0: skip)."),
    lr: float = typer.Option(5e-5, help="Encoder learning rate (the new MLM head uses 1e-3)."),
    batch_size: BatchSize = 32,
    seed: Seed = 42,
    max_examples: int = typer.Option(None, min=1, help="Pre-train on a seeded subset of the data of this size, "
                                                       "every relation kept (synthetic examples are added whole)."),
    per_relation: int = typer.Option(4, min=2, help="Examples of one relation together in a contrastive batch."),
    temperature: float = typer.Option(0.1, help="InfoNCE temperature τ."),
    max_length: int = typer.Option(128, help="Sub-word limit; longer sentences are windowed around the entities."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Allow --out to be a non-empty directory that is not a "
                                                             "pre-trained encoder: everything in it is replaced."),
    device: Device = "auto",
) -> None:
    """Pre-train an encoder for few-shot RE in two stages, MSLM then SCL; any knnie training loads the result."""
    from knnie.tasks.fewshot.pretrain import PretrainConfig, StageReport, pretrain_encoder

    config = PretrainConfig(mslm_epochs=mslm_epochs, scl_epochs=scl_epochs, lr=lr, batch_size=batch_size, seed=seed,
                            max_length=max_length, temperature=temperature, per_relation=per_relation,
                            max_examples=max_examples)

    def heard(stage: str, report: StageReport) -> None:
        for h in report.history:
            console.print(f"{stage} epoch {h['epoch']}/{report.epochs}: training loss {h['train_loss']:.4f}",
                          highlight=False)
        console.print(f"{stage}: {report.examples} examples, loss {report.loss_before:.4f} → {report.loss_after:.4f} "
                      f"on a fixed sample, {report.seconds:.0f} s", highlight=False)

    record = pretrain_encoder(data, out, config, encoder, synthetic, explanations, device, show_progress=True,
                              overwrite=overwrite, on_stage=heard)
    d = record["data"]
    console.print(f"saved {out}: {d['examples']} examples of {d['relations']} relations + {d['synthetic_examples']} "
                  f"synthetic, {d['triggers_used']} relation spans from explanations; use it with "
                  f"`knnie train --encoder {out}` or `knnie fewshot evaluate --encoder {out}`", highlight=False)


@app.command("sample")
@command
def sample_command(
    data: Path = typer.Option(..., help="Labelled relation examples (any format `knnie train` reads)."),
    k: int = typer.Option(..., "--k", help="Examples per relation (a relation with fewer is taken whole)."),
    out: Path = typer.Option(..., help="Where to write the K-shot set (JSON lines that every command reads)."),
    seed: Seed = 0,
) -> None:
    """Sample a K-shot training set: K examples of each relation, chosen with SEED (the same seed and data give the
    same set; with one seed, a smaller K gives a subset of a larger K's set)."""
    chosen, summary = sample_kshot(load_relations(data, "data"), k, seed)
    write_jsonl(out, (ex.to_record() for ex in chosen))
    console.print(f"wrote {out}: {summary.describe()}", highlight=False)


@app.command("generate")
@command
def generate_command(
    schema: Path = typer.Option(..., help='The relations: knnie\'s JSON/JSONL {"id", "name", "description"}, FewRel '
                                "pid2name.json or RE-Matching's."),
    support: Path = typer.Option(..., help="Labelled examples of the relations (labels are schema ids): the "
                                 "demonstrations, and the examples to explain."),
    per_relation: int = typer.Option(50, min=0, help="Synthetic examples wanted per relation (what --out already "
                                     "holds counts: a rerun resumes)."),
    out_path: Path = typer.Option(..., "--out", help="Synthetic examples, JSON lines of knnie's plain format "
                                  '{"text", "head", "tail", "label", "generated": true}, appended as made.'),
    explanations: Path = typer.Option(None, help="Also explain each support example here (JSON lines, appended; "
                                      "resumed on a rerun)."),
    llm: str = typer.Option("local", help=f"The LLM: {SPECS}."),
    llm_model: str = typer.Option(None, help="The model an HTTP server serves (default: $KNNIE_LLM_MODEL)."),
    threads: int = typer.Option(None, min=1, help="CPU threads of a local model (default: all cores)."),
    exclude: list[str] = typer.Option([], help="A relation id to generate nothing for (repeat the option), e.g. "
                                      "SemEval's Other."),
    tries: int = typer.Option(3, min=1, help="Requests per missing example at most (answers may be dropped)."),
    temperature: float = typer.Option(0.8, min=0.0, help="Sampling temperature of synthetic examples."),
    seed: Seed = 0,
) -> None:
    """Explain the support examples and generate schema-constrained synthetic examples with an LLM, validated:
    answers that do not parse, are cut short, name a head or tail not in the sentence, repeat one or copy a
    support sentence are dropped and counted."""
    relations = load_relation_types(schema, "schema")
    examples = load_relations(support, "support")
    support_by_relation(examples, relations)
    unknown = sorted(set(exclude) - {r.id for r in relations})
    if unknown:
        raise typer.BadParameter(f"not relations of the schema: {', '.join(unknown)}", param_hint="--exclude")
    wanted = [r for r in relations if r.id not in exclude]
    model = load_llm(llm, threads=threads, model=llm_model)
    console.print(f"LLM: {model.name}", highlight=False)
    if explanations is not None:
        e = explain_support(model, wanted, examples, explanations, seed=seed, tries=tries, show_progress=True)
        out.print(f"explanations: {e.written} written ({e.with_trigger} with a valid trigger), {e.existing} already "
                  f"in {explanations}, {e.failed} failed after {tries} tries; {e.asked} asked in {e.seconds:.0f} s; "
                  f"dropped: {_reasons(e.dropped)}", highlight=False)
        if e.interrupted:
            raise KnnieError(f"interrupted: what was written stays in {explanations}; rerun to resume")
    g = generate_examples(model, wanted, examples, per_relation, out_path, seed=seed, tries=tries,
                          temperature=temperature, show_progress=True)
    table = Table(title="synthetic examples")
    for col in ("asked", "kept", "dropped", "already there", "seconds", "kept / min"):
        table.add_column(col)
    table.add_row(str(g.asked), str(g.kept), str(sum(g.dropped.values())), str(g.existing), f"{g.seconds:.0f}",
                  f"{60 * g.kept / g.seconds:.1f}" if g.seconds else "-")
    out.print(table)
    out.print(f"{g.kept} synthetic examples kept, appended to {out_path}; dropped: {_reasons(g.dropped)}",
              highlight=False)
    if g.interrupted:
        raise KnnieError(f"interrupted: what was written stays in {out_path}; rerun to resume")
    short = {r: n for r, n in g.per_relation.items() if n < per_relation}
    if short:
        out.print(f"[yellow]{len(short)} relations have fewer than {per_relation}[/] (rerun to ask again): "
                  + ", ".join(f"{r} {n}" for r, n in list(short.items())[:10]), highlight=False)


def _reasons(dropped: dict[str, int]) -> str:
    """'reason n, ...', the most frequent first."""
    return ", ".join(f"{reason} {n}" for reason, n in sorted(dropped.items(), key=lambda x: -x[1])) or "none"
