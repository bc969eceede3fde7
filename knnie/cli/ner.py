"""`knnie ner ...`: train → memory build → tune → evaluate → predict for entity recognition."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer
from rich.table import Table

from knnie.cli.common import command, console, out
from knnie.data.schema import TaggedSentence
from knnie.data.tagged import read_sentences, read_tagged
from knnie.encoders import DEFAULT_ENCODER
from knnie.encoders.words import CHAR_BILSTM
from knnie.io import write_json, write_jsonl
from knnie.memory import INDEXES
from knnie.tasks.ner import EntityRecognizer, tag_set, train_ner
from knnie.tasks.training import TrainConfig

app = typer.Typer(help="Named-entity recognition with a memory of training words (kNN-NER).", no_args_is_help=True)
memory_app = typer.Typer(help="Build the word memories a NER model consults.", no_args_is_help=True)
app.add_typer(memory_app, name="memory")
METHODS = {"vanilla": "vanilla", "knn": "kNN-only (λ=1)", "knn_ner": "kNN-NER"}


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
    out_dir: Path = typer.Option(..., "--out", help="Model directory to write."),
    encoder: str = typer.Option(DEFAULT_ENCODER, help=f"Encoder name, local Hugging Face model directory, or "
                                f"'{CHAR_BILSTM}' (trained from scratch; for languages with no pretrained model)."),
    epochs: int = typer.Option(3, min=1),
    batch_size: int = typer.Option(32, min=1),
    lr: float = typer.Option(None, help="Encoder learning rate (default 5e-5, or 2e-3 for char-bilstm)."),
    head_lr: float = typer.Option(1e-3),
    seed: int = typer.Option(42),
    max_length: int = typer.Option(256, help="Sub-token limit; longer sentences are split into windows."),
) -> None:
    """Fine-tune a token classifier (tag on each word's first sub-token)."""
    train_set = load_tagged(train_path, "train")
    dev_set = load_tagged(dev_path, "dev")
    tags = tag_set(train_set + dev_set)
    recognizer = EntityRecognizer.new(tags, encoder, train_set, max_length)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, head_lr=head_lr, seed=seed,
                         lr=lr if lr is not None else (2e-3 if encoder == CHAR_BILSTM else 5e-5))
    history = train_ner(recognizer, train_set, dev_set, config, show_progress=True)
    recognizer.save_pretrained(out_dir)
    write_json(out_dir / "training.json", {"config": asdict(config), "history": history,
                                           "train": str(train_path), "dev": str(dev_path)})
    best = max(history, key=lambda h: h.get("dev_f1", 0.0))
    console.print(f"saved {out_dir} ({len(tags)} tags); best dev entity F1 {best.get('dev_f1', 0):.4f} "
                  f"at epoch {best['epoch']}", highlight=False)


@memory_app.command("build")
@command
def memory_build(
    model_dir: Path = typer.Argument(..., help="A model directory from `knnie ner train`."),
    data: Path = typer.Option(..., help="Tagged sentences whose words to remember (usually the training set)."),
    name: str = typer.Option("train", help="Memory name."),
    index: str = typer.Option("flat", help=f"FAISS index: {' | '.join(INDEXES)} (flat is exact L2)."),
    fp16: bool = typer.Option(False, "--fp16", help="Store keys in half precision."),
    batch_size: int = typer.Option(64, min=1),
) -> None:
    """Keys = the model's vector of every word of DATA, values = their tags."""
    recognizer = EntityRecognizer.from_pretrained(model_dir, memories=False)
    memory = recognizer.build_memory(load_tagged(data, name), index, fp16, batch_size, show_progress=True)
    memory.save(model_dir / "memories" / name)
    console.print(f"memory '{name}': {len(memory)} word keys of dim {memory.config.dim} ({index}"
                  f"{', fp16' if fp16 else ''}) saved; run `knnie ner tune` to choose k, T and λ", highlight=False)


@app.command("tune")
@command
def tune_command(
    model_dir: Path = typer.Argument(..., help="A model directory with at least one memory."),
    dev: Path = typer.Option(..., help="Tagged dev data. Never tune on test."),
    batch_size: int = typer.Option(64, min=1),
) -> None:
    """Search each memory once (k_max = 256) and score the whole k/T/λ/kernel grid on dev entity F1."""
    recognizer = EntityRecognizer.from_pretrained(model_dir)
    report = recognizer.tune(load_tagged(dev, "dev"), batch_size, show_progress=True)
    recognizer.save_config(model_dir)
    table = Table(title=f"dev entity micro-F1 (vanilla {report['vanilla_f1']:.4f})")
    for col in ("memory", "k", "T", "λ", "kernel", "kNN-NER F1", "kNN-only F1"):
        table.add_column(col)
    for name, r in report["memories"].items():
        p = r["params"]
        table.add_row(name, str(p["k"]), f"{p['temperature']:.4g}", f"{p['lam']:.1f}", p["kernel"],
                      f"{r['dev_f1']:.4f}", f"{r['knn_only_dev_f1']:.4f}")
    out.print(table)


@app.command("evaluate")
@command
def evaluate_command(
    model_dir: Path = typer.Argument(..., help="A model directory (tuned, with a memory, for the kNN rows)."),
    data: Path = typer.Option(..., help="Tagged test data."),
    output: Path = typer.Option(None, help="Also write the full report as JSON here."),
    batch_size: int = typer.Option(64, min=1),
) -> None:
    """Vanilla, kNN-only and kNN-NER: entity micro P/R/F1 (seqeval's) and F1 per type."""
    recognizer = EntityRecognizer.from_pretrained(model_dir)
    report = recognizer.evaluate(load_tagged(data, "test"), batch_size, show_progress=True)
    table = Table(title=str(data))
    types = list(report["vanilla"]["per_type"])
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
    batch_size: int = typer.Option(64, min=1),
    show: int = typer.Option(5, min=0, help="Print this many sentences to the terminal."),
) -> None:
    """Writes {text, tokens, tags, entities: [{text, type, start, end, char_start, char_end, score, neighbours}]}."""
    recognizer = EntityRecognizer.from_pretrained(model_dir)
    sentences = read_sentences(input, recognizer.config.char_tokens)
    predictions = recognizer.predict(sentences, neighbours, batch_size, show_progress=True)
    rows = [p.to_dict() for p in predictions]
    write_jsonl(output, rows)
    for p in predictions[:show]:
        out.print(f"\n[bold]{p.text}[/]", highlight=False)
        for e in p.entities:
            out.print(f"  [green]{e.type}[/] {e.text!r} chars [{e.char_start}, {e.char_end}) p = {e.score:.3f}",
                      highlight=False)
            for n in e.neighbours:
                out.print(f"      d = {n.distance:8.2f}  {n.tag:<8} {n.record['text'][:90]}", highlight=False,
                          markup=False)
    console.print(f"{len(rows)} sentences written to {output}", highlight=False)
