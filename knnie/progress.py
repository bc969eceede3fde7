"""Rich progress bars for long work; silent unless asked (the CLI asks)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")


def track(items: Iterable[T], description: str, total: int | None = None, show: bool = False) -> Iterator[T]:
    if not show:
        yield from items
        return
    with _bar() as bar:
        yield from bar.track(items, total=total, description=description)


@contextmanager
def counter(description: str, total: int, show: bool = False) -> Iterator[Callable[[int, str | None], None]]:
    """A bar advanced by hand, for work whose steps are not an iterable (tries that may or may not count):
    yields `update(advance, description)`, the description replaced when one is given."""
    if not show:
        yield lambda advance, description=None: None
        return
    with _bar() as bar:
        task = bar.add_task(description, total=total)
        yield lambda advance, description=None: bar.update(task, advance=advance, description=description)


def _bar():  # -> rich.progress.Progress (imported only when a bar is shown)
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TimeRemainingColumn(), transient=False)
