"""Ray, for the builds that outgrow one process (`knnie memory build --ray`, `knnie ds build --ray`):
connect to a cluster by its address, or start a local Ray instance for this run."""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from knnie.errors import DataError, KnnieError

CONNECT_TIMEOUT = 5.0  # seconds: Ray itself retries an unreachable address for minutes before it gives up
WORKER_RETRIES = 2  # a worker that dies is restarted and its item retried this often (Ray Data: forever)


def import_ray() -> Any:
    """The `ray` module, or a clear error saying how to install it."""
    try:
        import ray
        import ray.data  # Ray Data ships in the ray[data] extra
    except ImportError as e:
        raise KnnieError(f"--ray needs Ray Data ({e.name} is not installed): pip install 'knnie[ray]'") from None
    return ray


def check_reachable(address: str) -> None:
    """Refuse at once a cluster address ("host:port" or "ray://host:port") that nothing answers on."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise KnnieError(f"Ray address '{address}' is not host:port (or ray://host:port, or auto)")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT).close()
    except OSError as e:
        raise KnnieError(f"cannot reach the Ray cluster at {address} ({e.strerror or e}): start it with "
                         "`ray start --head`, check the address, or leave it out to run on this machine") from None


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray for the length of a build: joined at `address` ("auto": the cluster this machine is part
    of), or started locally with `num_cpus` (None: all cores). An instance already running in this
    process (a caller's own `ray.init`) is used as it is and left running."""
    ray = import_ray()
    if address and address != "auto":
        check_reachable(address)
    if ray.is_initialized():
        yield ray
        return
    options = {"logging_level": logging.WARNING, "log_to_driver": False, "configure_logging": True}
    try:
        if address:
            ray.init(address=address, **options)
        else:
            ray.init(num_cpus=num_cpus, include_dashboard=False, **options)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise KnnieError(f"cannot start Ray{f' at {address}' if address else ''}: {e}") from None
    try:
        yield ray
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()


def ordered_data(ray: Any) -> None:
    """Make Ray Data return rows in input order, so that a distributed build writes what a
    one-process build writes, in the same order."""
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False


Worker = Callable[[dict[str, Any]], Iterable[dict[str, Any]]]  # one item → its result rows (JSON-able dicts)


class _Actor:
    """A Ray Data actor holding one worker, `make(*args)`, built once (a model loaded once per
    actor). A knnie error in it becomes an error row that the driver raises again as it was:
    Ray would hand the driver only the exception's text, without the file, line and field."""

    def __init__(self, make: Callable[..., Worker], args: tuple) -> None:
        self.work = make(*args)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, list[str]]:
        rows = []
        for item in batch["item"]:
            try:
                rows += [json.dumps(r, ensure_ascii=False) for r in self.work(json.loads(item))]
            except KnnieError as e:
                error = ({k: getattr(e, k) for k in ("message", "path", "line", "field")} if isinstance(e, DataError)
                         else {"message": str(e)})
                rows.append(json.dumps({"error": error, "data": isinstance(e, DataError)}, default=str))
                break
        return {"row": rows}


def map_in_order(ray: Any, items: Sequence[dict[str, Any]], make: Callable[..., Worker], args: tuple, workers: int,
                 kept: str) -> Iterator[dict[str, Any]]:
    """The result rows of every item, in item order, computed by `workers` Ray Data actors each
    holding `make(*args)`. A worker's knnie error is raised here as it was; any other failure
    (a worker that died, a lost node) ends the build with one clear error ending in `kept`,
    what is left of the build on disk."""
    if not items:
        return
    ordered_data(ray)
    logging.getLogger("ray.data").setLevel(logging.ERROR)  # not lines per dataset run
    data = ray.data.from_items([{"item": json.dumps(i)} for i in items], override_num_blocks=len(items))
    with warnings.catch_warnings():  # Ray 2.60 takes restart limits only as the deprecated ray_remote_args
        warnings.simplefilter("ignore")
        rows = data.map_batches(_Actor, fn_constructor_args=(make, args), batch_size=1,
                                compute=ray.data.ActorPoolStrategy(size=workers), max_restarts=WORKER_RETRIES,
                                max_task_retries=WORKER_RETRIES)
    try:
        for row in rows.iter_rows():
            result = json.loads(row["row"])
            if "error" in result:
                raise DataError(**result["error"]) if result["data"] else KnnieError(result["error"]["message"])
            yield result
    except KnnieError:
        raise
    except Exception as e:  # Ray's own errors: a worker died, the cluster went away
        first = (str(e).strip().splitlines() or [""])[0][:300]
        raise KnnieError(f"the build failed on Ray ({type(e).__name__}: {first}); {kept}") from None


def worker_count(ray: Any, workers: int | None) -> int:
    """`workers`, or one per CPU of the Ray instance or cluster, and never more CPUs than it has."""
    cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
    return min(workers or cpus, cpus)
