"""`knnie serve`: the HTTP service and its web page over one or more model directories."""

from __future__ import annotations

import ipaddress
import os

import typer

from knnie.cli.common import command, console
from knnie.cli.options import Device
from knnie.errors import KnnieError

DEFAULT_KEY_ENV = "KNNIE_API_KEY"


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


def api_key_from_env(variable: str | None) -> str | None:
    """The API key in `variable` (default KNNIE_API_KEY); a variable named explicitly must be set."""
    key = os.environ.get(variable or DEFAULT_KEY_ENV) or None
    if variable is not None and key is None:
        raise KnnieError(f"--api-key-env {variable}: the environment variable {variable} is not set (or empty)")
    return key


@command
def serve_command(
    models: list[str] = typer.Argument(..., help="Model directories (NER or relation), each named by its "
                                                 "directory's name, or NAME=DIR."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, min=1, max=65535),
    api_key_env: str | None = typer.Option(
        None, help=f"Environment variable holding the API key the write endpoints (/memory/add, /memory/remove) "
                   f"require in the X-API-Key header (default {DEFAULT_KEY_ENV}; unset: writes are open)."),
    device: Device = "auto",
    max_batch: int = typer.Option(64, min=1, help="Most items of concurrent requests encoded in one call."),
    max_body: int = typer.Option(4 << 20, min=1024, help="Largest request body accepted, in bytes (else 413)."),
    threads: int | None = typer.Option(None, min=1, help="Torch threads (default: torch's, one per core)."),
) -> None:
    """Serve POST /extract, /relations, /entities, /memory/add, /memory/remove and GET /health, the
    OpenAPI docs at /docs and a web page at / that shows entities, relations and their neighbours."""
    import torch
    import uvicorn

    from knnie.service import create_app, parse_model_args

    key = api_key_from_env(api_key_env)
    if threads is not None:
        torch.set_num_threads(threads)
    named = parse_model_args(models)
    console.print(f"loading {len(named)} model(s): {', '.join(f'{n} = {p}' for n, p in named.items())}",
                  highlight=False)
    app = create_app(named, api_key=key, device=device, max_batch=max_batch, max_body_bytes=max_body)
    if key is None and not is_loopback(host):
        console.print(f"[bold red]WARNING: listening on {host}, reachable from other machines, with NO API KEY: "
                      f"anyone who reaches port {port} can add to and remove from the models' memories. Set "
                      f"{api_key_env or DEFAULT_KEY_ENV} (or --api-key-env VAR) to require a key.[/]",
                      highlight=False)
    elif key is not None:
        console.print(f"write endpoints need the API key (from {api_key_env or DEFAULT_KEY_ENV}) in the X-API-Key "
                      "header", highlight=False)
    console.print(f"serving on http://{host}:{port}/ (API docs at /docs)", highlight=False)
    uvicorn.run(app, host=host, port=port, log_level="info")
