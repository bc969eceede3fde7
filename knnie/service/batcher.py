"""One worker thread per model that turns concurrent requests into one encoder call.

Requests queue up; the worker takes what is waiting (up to `max_batch` items, requests with the
same parameters), calls the model once on all their items and hands each request its share of
the results. While the worker is busy (or a writer holds the model), new requests gather, so
the busier the server, the larger the batches.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Future
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)
Run = Callable[[list[Any], Hashable], list[Any]]  # (items, parameters) -> one result per item


@dataclass
class _Request:
    items: list[Any]
    params: Hashable
    future: Future = field(default_factory=Future)


class Batcher:
    """Batch the requests to `run`; the worker holds every lock of `locks` (those of the models
    `run` reads, in a fixed order) while it takes a batch and runs it, so writers of a model are
    never interleaved with a prediction."""

    def __init__(self, run: Run, locks: Sequence[threading.Lock], max_batch: int = 64, name: str = "") -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        self._run, self._locks, self.max_batch = run, list(locks), max_batch
        self._pending: deque[_Request] = deque()
        self._wake = threading.Condition()
        self._closed = False
        self.calls = self.items = 0  # calls of `run` and the items they took, for the mean batch size
        self._thread = threading.Thread(target=self._work, name=f"knnie-batcher-{name}", daemon=True)
        self._thread.start()

    def submit(self, items: list[Any], params: Hashable = ()) -> Future:
        """Queue `items`; the future gives their results, in order (or the error of running them)."""
        request = _Request(list(items), params)
        with self._wake:
            if self._closed:
                raise RuntimeError("the batcher is closed")
            self._pending.append(request)
            self._wake.notify()
        return request.future

    @property
    def waiting(self) -> int:
        """Requests queued and not yet taken by the worker."""
        with self._wake:
            return len(self._pending)

    def close(self) -> None:
        """Finish the queued requests, then stop the worker."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()

    def _work(self) -> None:
        while True:
            with self._wake:
                self._wake.wait_for(lambda: self._pending or self._closed)
                if not self._pending:
                    return
            with ExitStack() as held:
                for lock in self._locks:
                    held.enter_context(lock)
                self._answer(self._take())

    def _take(self) -> list[_Request]:
        """The oldest request and the others waiting with the same parameters, up to max_batch items
        (a larger request goes alone); the rest stay queued in order."""
        with self._wake:
            first = self._pending.popleft()
            batch, size, rest = [first], len(first.items), deque()
            while self._pending:
                request = self._pending.popleft()
                if request.params == first.params and size + len(request.items) <= self.max_batch:
                    batch.append(request)
                    size += len(request.items)
                else:
                    rest.append(request)
            self._pending.extendleft(reversed(rest))
        return batch

    def _answer(self, batch: list[_Request]) -> None:
        """Run the batch in one call; if that fails, run its requests one by one, so a request that
        fails fails alone."""
        items = [item for r in batch for item in r.items]
        self.calls, self.items = self.calls + 1, self.items + len(items)
        try:
            results = self._run(items, batch[0].params)
        except Exception as e:
            if len(batch) == 1:
                batch[0].future.set_exception(e)
                return
            log.warning("a batch of %d requests failed (%s); running them one by one", len(batch), e)
            for request in batch:
                self._answer([request])
            return
        at = 0
        for request in batch:
            request.future.set_result(results[at : at + len(request.items)])
            at += len(request.items)
