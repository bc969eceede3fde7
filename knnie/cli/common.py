"""What every command shares: the console, error reporting, data loading, and the steps
the RE and NER commands have in common (saving a training run, building a memory, the
tuning table)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from knnie.cli.options import BatchSize, Device, LiveMemory, Source, SourceMemory
from knnie.data import RelationExample, read_relations
from knnie.errors import KnnieError
from knnie.io import write_json
from knnie.progress import counter
from knnie.tasks.base import MemoryAugmentedModel
from knnie.tasks.training import TrainConfig

console = Console(stderr=True)
out = Console()
F = TypeVar("F", bound=Callable)
# how each method of `distributions` is called in tables
METHODS = {"vanilla": "vanilla", "knn": "kNN-only (λ=1)", "knn_re": "kNN-RE", "knn_ner": "kNN-NER"}


def command(fn: F) -> F:
    """Run a CLI command: knnie's own errors print as one clear line and exit with 1."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        logging.basicConfig(level=logging.WARNING, format="%(message)s",
                            handlers=[RichHandler(console=console, show_path=False)])
        try:
            return fn(*args, **kwargs)
        except KnnieError as e:
            console.print(f"[bold red]error:[/] {e}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def load_relations(path: Path, what: str) -> list[RelationExample]:
    examples = read_relations(path)
    console.print(f"{what}: {len(examples)} examples from {path}", highlight=False)
    return examples


def show_instance(row: dict[str, Any], score: str, none: str) -> None:
    """Print one prediction row's sentence, head, tail and answer: the prediction with `score`
    (already formatted), or `none` and the row's reason when there is no answer."""
    from rich.markup import escape

    verdict = (f"[green]{escape(row['prediction'])}[/] ({score})" if row["prediction"]
               else f"[red]{none}[/]: {escape(row['reason'])}")
    out.print(f"\n[bold]{escape(row['text'])}[/]\n  head: {escape(row['head']['text'])}   "
              f"tail: {escape(row['tail']['text'])}\n  → {verdict}", highlight=False)


def show_predictions(rows: list[dict[str, Any]]) -> None:
    """Print relation prediction rows (`RelationPrediction.to_row`): each answer and the neighbours behind it."""
    for row in rows:
        show_instance(row, f"p = {row['probability']:.3f}" if row["prediction"] else "", "no prediction")
        for n in row["neighbours"]:
            out.print(f"    d = {n['distance']:8.2f}  {n['label']:<28} {n['text'][:100]}", highlight=False,
                      markup=False)


def save_training(out_dir: Path, config: TrainConfig, history: list[dict], train_path: Path,
                  dev_path: Path | str | None, size: str, metric: str) -> None:
    """Write training.json beside the saved model and say which epoch was kept (`size`:
    "8 labels", `metric`: what dev_f1 measures; `dev_path` None: no dev set, the last epoch)."""
    write_json(out_dir / "training.json", {"config": asdict(config), "history": history, "train": str(train_path),
                                           "dev": None if dev_path is None else str(dev_path)})
    if dev_path is None:
        console.print(f"saved {out_dir} ({size}); no dev set: the last epoch is kept", highlight=False)
        return
    best = max(history, key=lambda h: h.get("dev_f1", 0.0))
    console.print(f"saved {out_dir} ({size}); best dev {metric} {best.get('dev_f1', 0):.4f} "
                  f"at epoch {best['epoch']}", highlight=False)


def check_ray_options(ray: bool, ray_address: str | None, workers: int | None) -> None:
    """Refuse --workers without Ray."""
    if workers and not (ray or ray_address):
        raise KnnieError("--workers is for a build on Ray: add --ray")


def build_memory(front_class: type[MemoryAugmentedModel], load: Callable[[Path, str], list], model_dir: Path,
                 data: str, name: str, index: str, fp16: bool, code_size: int, rerank: int, batch_size: int,
                 device: str, ray: bool, ray_address: str | None, workers: int | None, shards: int | None,
                 keys: str, tune_command: str) -> None:
    """Build memory `name` of the examples in `data` (a file, a directory or a glob; `load` reads
    one file) and save it in the model directory; `keys` says what a key is ("keys", "word keys"),
    `tune_command` what to run next. With Ray, a number of shards or several files, the build is
    sharded (`knnie.memory.build`): encoded part by part and assembled without holding all keys."""
    from knnie.data.files import input_files
    from knnie.encoders.device import resolve_device
    from knnie.memory.build import build_sharded
    from knnie.memory.memory import check_code_size
    from knnie.tasks.model_dir import memory_dir

    check_ray_options(ray, ray_address, workers)
    resolve_device(device)  # a GPU that is not there is refused before any work
    files = input_files(data)
    if ray or ray_address or shards or len(files) > 1:
        encoded = 0
        with counter("encoding shards", None, show=True) as update:
            def progress(done: int, total: int, examples: int) -> None:
                nonlocal encoded
                encoded += examples
                update(0, f"encoding shards ({encoded:,} examples)", completed=done, total=total)

            config = build_sharded(model_dir, files, name, index=index, fp16=fp16, code_size=code_size, rerank=rerank,
                                   batch_size=batch_size, shards=shards, use_ray=ray or bool(ray_address),
                                   ray_address=ray_address, workers=workers, device=device, progress=progress)
        size, dim, kind, saved = config.size, config.dim, config.index, memory_dir(model_dir, name)
    else:
        front = front_class.from_pretrained(model_dir, memories=False, device=device)
        if index == "ivfpq":  # before the encoding, not after
            check_code_size(code_size, front.representer.dim)
        memory = front.build_memory(load(files[0], name), index, fp16, batch_size, show_progress=True,
                                    source=files[0].name, code_size=code_size)
        memory.set_search(rerank=rerank)
        front.attach_memory(name, memory)
        saved = front.save_memory(model_dir, name)
        size, dim, kind = len(memory), memory.config.dim, memory.config.index
    console.print(f"memory '{name}': {size} {keys} of dim {dim} ({kind}{', fp16' if fp16 else ''}) saved in {saved}; "
                  f"run `{tune_command}` to choose k, T and λ", highlight=False)


def live_memory_commands(app: typer.Typer, front_class: type[MemoryAugmentedModel], load: Callable[[Path, str], list],
                         data_help: str, group: str) -> None:
    """Register `add` and `remove` on a memory command group (`group`: "knnie memory", "knnie ner memory"):
    examples added to a saved model's memory, or removed, without retraining."""
    @app.command("add")
    @command
    def add(
        model_dir: Path = typer.Argument(..., help="A model directory."),
        data: Path = typer.Option(..., help=data_help),
        memory: LiveMemory = "live",
        source: Source = "",
        batch_size: BatchSize = 64,
        device: Device = "auto",
    ) -> None:
        """Add DATA to a memory of the model, saved atomically; the next prediction uses it."""
        front = front_class.from_pretrained(model_dir, device=device)
        examples, name = load(data, "to add"), source or data.stem
        before = set(front.label_space)
        n = front.add_examples(examples, memory, name, save_to=model_dir, batch_size=batch_size)
        new = [label for label in front.label_space if label not in before]
        console.print(f"memory '{memory}': +{n} entries from '{name}' ({len(front.memories[memory])} in all); "
                      f"new labels: {', '.join(new) or 'none'}; undo: `{group} remove {model_dir} --source {name}`",
                      highlight=False)

    @app.command("remove")
    @command
    def remove(
        model_dir: Path = typer.Argument(..., help="A model directory."),
        source: str = typer.Option(..., help=f"The source to remove (what `{group} add` named it)."),
        memory: SourceMemory = None,
    ) -> None:
        """Remove every memory entry of SOURCE (undo `add`), saved atomically."""
        front = front_class.from_pretrained(model_dir, device="cpu")
        sizes, labels = {name: len(m) for name, m in front.memories.items()}, front.label_space
        n = front.remove_examples(source, memory, save_to=model_dir)
        changes = [f"'{name}' {size} → {len(front.memories[name])}" if name in front.memories else f"'{name}' deleted"
                   for name, size in sizes.items() if len(front.memories.get(name, ())) != size]
        gone = [label for label in labels if label not in front.label_space]
        console.print(f"removed {n} entries of '{source}': memory {', '.join(changes)}; labels gone: "
                      f"{', '.join(gone) or 'none'}", highlight=False)


def require_memory(front: MemoryAugmentedModel, model_dir: Path, build: str) -> None:
    """Refuse to tune a model without memories, naming the command that builds one."""
    if not front.memories:
        raise KnnieError(f"{model_dir} has no memory: build one with `{build} {model_dir} --data ...` before tuning")


def print_tune_table(report: dict[str, Any], metric: str, method: str) -> None:
    """The settings `tune` chose per memory and their dev scores (`metric` names the score,
    `method` the interpolated method)."""
    vanilla = f" (vanilla {report['vanilla_f1']:.4f})" if "vanilla_f1" in report else " (no head: kNN only)"
    table = Table(title=f"dev {metric}{vanilla}")
    for col in ("memory", "k", "T", "λ", "kernel", f"{METHODS[method]} F1", "kNN-only F1"):
        table.add_column(col)
    for name, r in report["memories"].items():
        p = r["params"]
        table.add_row(name, str(p["k"]), f"{p['temperature']:.4g}", f"{p['lam']:.1f}", p["kernel"],
                      f"{r['dev_f1']:.4f}", f"{r['knn_only_dev_f1']:.4f}")
    out.print(table)
    if "mix" in report:
        terms = " + ".join(f"{w:.1f}·p({name})" for name, w in report["mix"]["weights"].items())
        out.print(f"memories mixed as p = {terms}: dev F1 {report['mix']['dev_f1']:.4f}")
