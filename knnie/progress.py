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
def counter(description: str, total: int | None, show: bool = False) -> Iterator[Callable[..., None]]:
    """A bar advanced by hand, for work whose steps are not an iterable (tries that may or may not count):
    yields `update(advance, description, **fields)`, the description replaced when one is given, and
    rich's task fields (`completed`, `total`: a total learnt on the way) set."""
    if not show:
        yield lambda *args, **fields: None
        return
    with _bar() as bar:
        task = bar.add_task(description, total=total)
        yield lambda advance=0, description=None, **fields: bar.update(task, advance=advance,
                                                                       description=description, **fields)


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
