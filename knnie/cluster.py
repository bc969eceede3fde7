"""Ray, for the builds that outgrow one process (`knnie memory build --ray`, `knnie ds build --ray`):
connect to a cluster by its address, or start a local Ray instance for this run."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from knnie.errors import KnnieError

CONNECT_TIMEOUT = 5.0  # seconds: Ray itself retries an unreachable address for minutes before it gives up


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
    if ray.is_initialized():
        yield ray
        return
    if address and address != "auto":
        check_reachable(address)
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
