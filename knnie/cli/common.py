"""What every command shares: the console, error reporting, data loading."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler

from knnie.data import RelationExample, read_relations
from knnie.errors import KnnieError

console = Console(stderr=True)
out = Console()
F = TypeVar("F", bound=Callable)


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
