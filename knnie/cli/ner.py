"""`knnie ner ...`: train → memory build → tune → evaluate → predict for entity recognition."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from knnie.cli.common import (
    METHODS,
    build_memory,
    command,
    console,
    live_memory_commands,
    out,
    print_tune_table,
    require_memory,
    save_training,
)
from knnie.cli.options import (
    BatchSize,
    CodeSize,
    Device,
    Epochs,
    Fp16,
    HeadLr,
    Index,
    MemoryData,
    MemoryName,
    OutDir,
    Overwrite,
    Ray,
    RayAddress,
    ReportJson,
    Rerank,
    Seed,
    Shards,
    TunedModelDir,
    Workers,
)
from knnie.cli.outputs import check_output
from knnie.data.schema import TaggedSentence
from knnie.data.tagged import read_sentences, read_tagged
from knnie.encoders import DEFAULT_ENCODER
from knnie.encoders.device import resolve_device
from knnie.encoders.words import CHAR_BILSTM
from knnie.io import write_json, write_jsonl
from knnie.tasks.model_dir import check_target
from knnie.tasks.ner import EntityRecognizer, tag_set, train_ner
from knnie.tasks.training import TrainConfig, seed_everything

app = typer.Typer(help="Named-entity recognition with a memory of training words (kNN-NER).", no_args_is_help=True)
memory_app = typer.Typer(help="Build, grow and shrink the word memories a NER model consults.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")


def load_tagged(path: Path, what: str) -> list[TaggedSentence]:
    sentences = read_tagged(path)
    console.print(f"{what}: {len(sentences)} sentences, {sum(len(s.tokens) for s in sentences)} words from {path}",
                  highlight=False)
    return sentences


@app.command("train")
@command
def train_command(
    train_path: Path = typer.Option(..., "--train", help="Tagged training data (CoNLL columns or JSONL)."),
    dev_path: Path = typer.Option(..., "--dev", help="Tagged dev data: picks the best epoch."),
    out_dir: OutDir = ...,
    encoder: str = typer.Option(DEFAULT_ENCODER, help=f"Encoder name, local Hugging Face model directory, or "
                                f"'{CHAR_BILSTM}' (trained from scratch; for languages with no pretrained model)."),
    epochs: Epochs = 3,
    batch_size: BatchSize = 32,
    lr: float = typer.Option(None, help="Encoder learning rate (default 5e-5, or 2e-3 for char-bilstm)."),
    head_lr: HeadLr = 1e-3,
    seed: Seed = 42,
    max_length: int = typer.Option(256, help="Sub-token limit; longer sentences are split into windows."),
    overwrite: Overwrite = False,
    device: Device = "auto",
) -> None:
    """Fine-tune a token classifier (tag on each word's first sub-token)."""
    check_target(out_dir, overwrite)
    target = resolve_device(device)
    train_set = load_tagged(train_path, "train")
    dev_set = load_tagged(dev_path, "dev")
    tags = tag_set(train_set + dev_set)
    seed_everything(seed)  # the new head and marker embeddings too, so --seed decides the whole run
    recognizer = EntityRecognizer.new(tags, encoder, train_set, max_length, device=target)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, head_lr=head_lr, seed=seed,
                         lr=lr if lr is not None else (2e-3 if encoder == CHAR_BILSTM else 5e-5))
    history = train_ner(recognizer, train_set, dev_set, config, show_progress=True)
    recognizer.save_pretrained(out_dir, overwrite)
    save_training(out_dir, config, history, train_path, dev_path, f"{len(tags)} tags", "entity F1")


@memory_app.command("build")
@command
def memory_build(
    model_dir: Path = typer.Argument(..., help="A model directory from `knnie ner train`."),
    data: MemoryData = ...,
    name: MemoryName = "train",
    index: Index = "auto",
    fp16: Fp16 = False,
    code_size: CodeSize = 32,
    rerank: Rerank = 64,
    batch_size: BatchSize = 64,
    device: Device = "auto",
    ray: Ray = False,
    ray_address: RayAddress = None,
    workers: Workers = None,
    shards: Shards = None,
) -> None:
    """Keys = the model's vector of every word of DATA (tagged sentences, usually the training set), values = their
    tags."""
    build_memory(EntityRecognizer, load_tagged, model_dir, data, name, index, fp16, code_size, rerank, batch_size,
                 device, ray, ray_address, workers, shards, "word keys", "knnie ner tune")


live_memory_commands(memory_app, EntityRecognizer, load_tagged,
                     "Tagged sentences to add (tags the model never saw are fine).", "knnie ner memory")


@app.command("tune")
@command
def tune_command(
    model_dir: TunedModelDir,
    dev: Path = typer.Option(..., help="Tagged dev data. Never tune on test."),
    batch_size: BatchSize = 64,
    device: Device = "auto",
) -> None:
    """Search each memory once (k_max = 256) and score the whole k/T/λ/kernel grid on dev entity F1."""
    recognizer = EntityRecognizer.from_pretrained(model_dir, device=device)
    require_memory(recognizer, model_dir, "knnie ner memory build")
    report = recognizer.tune(load_tagged(dev, "dev"), batch_size, show_progress=True)
    recognizer.save_config(model_dir)
    print_tune_table(report, "entity micro-F1", "knn_ner")


@app.command("evaluate")
@command
def evaluate_command(
    model_dir: Path = typer.Argument(..., help="A model directory (tuned, with a memory, for the kNN rows)."),
    data: Path = typer.Option(..., help="Tagged test data."),
    output: ReportJson = None,
    batch_size: BatchSize = 64,
    device: Device = "auto",
) -> None:
    """Vanilla, kNN-only and kNN-NER: entity micro P/R/F1 (seqeval's) and F1 per type (a headless
    model: kNN-only alone)."""
    check_output(output)
    recognizer = EntityRecognizer.from_pretrained(model_dir, device=device)
    report = recognizer.evaluate(load_tagged(data, "test"), batch_size, show_progress=True)
    table = Table(title=str(data))
    types = list(next(iter(report.values()))["per_type"])
    for col in ("method", "P", "R", "F1", *(f"F1 {t}" for t in types)):
        table.add_column(col)
    for method, r in report.items():
        cells = [r["precision"], r["recall"], r["f1"], *(r["per_type"].get(t, {"f1": 0.0})["f1"] for t in types)]
        table.add_row(METHODS[method], *(f"{100 * c:.2f}" for c in cells))
    out.print(table)
    if output:
        write_json(output, report)


@app.command("predict")
@command
def predict_command(
    model_dir: Path = typer.Argument(..., help="A model directory from `knnie ner train`."),
    input: Path = typer.Option(..., "--input", help="Sentences: .txt (one per line) or .jsonl ({text} or {tokens})."),
    output: Path = typer.Option(..., "--output", help="JSONL with the entities of each sentence."),
    neighbours: int = typer.Option(0, min=0, help="Nearest training words to return behind each entity."),
    batch_size: BatchSize = 64,
    show: int = typer.Option(5, min=0, help="Print this many sentences to the terminal."),
    device: Device = "auto",
) -> None:
    """Writes {text, tokens, tags, entities: [{text, type, start, end, char_start, char_end, score, neighbours}]}."""
    check_output(output)
    recognizer = EntityRecognizer.from_pretrained(model_dir, device=device)
    sentences = read_sentences(input, recognizer.config.char_tokens)
    predictions = recognizer.predict(sentences, neighbours, batch_size, show_progress=True)
    rows = [p.to_dict() for p in predictions]
    write_jsonl(output, rows)
    for p in predictions[:show]:
        out.print(f"\n[bold]{escape(p.text)}[/]", highlight=False)
        for e in p.entities:
            mention = p.text[e.char_start : e.char_end]
            out.print(f"  [green]{escape(e.type)}[/] {escape(repr(mention))} chars [{e.char_start}, {e.char_end}) "
                      f"p = {e.score:.3f}", highlight=False)
            for n in e.neighbours:
                out.print(f"      d = {n.distance:8.2f}  {n.label:<8} {n.record['text'][:90]}", highlight=False,
                          markup=False)
    console.print(f"{len(rows)} sentences written to {output}", highlight=False)
