"""The typer CLI: one command per module, each a thin layer over the library."""
