"""`knnie ds build`: distant supervision from KB triples and raw text."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import typer
from rich.table import Table

from knnie.cli.common import check_ray_options, command, console, out
from knnie.cli.options import Ray, RayAddress, Workers
from knnie.cluster import ray_session
from knnie.distant import DSSummary, build_ds, build_ds_ray, iter_documents, read_aliases, read_triples, write_ds
from knnie.progress import track

app = typer.Typer(help="Distant supervision: KB triples matched against raw text.", no_args_is_help=True)


@app.command("build")
@command
def build(
    triples: Path = typer.Option(..., help="KB triples: head<TAB>relation<TAB>tail per line."),
    corpus: str = typer.Option(..., help="Raw text: a file, a directory (every file under it, recursively, "
                               "hidden ones left out) or a glob ('raw/*.txt', 'raw/**/*.txt'); .jsonl files hold "
                               "{text} lines; files that are not UTF-8 are reported and skipped."),
    out_path: Path = typer.Option(..., "--out", help="DS examples (knnie plain JSONL) to write."),
    aliases: Path = typer.Option(None, help="Aliases: name<TAB>alias[<TAB>alias ...] per line."),
    ambiguous: str = typer.Option("skip", help="An entity pair with several KB relations: keep one example "
                                  "per relation, or skip it (default)."),
    one_per_line: bool = typer.Option(False, "--one-per-line", help="Each line of a text file is a document."),
    drop_suspicious: bool = typer.Option(False, "--drop-suspicious",
                                         help="Drop entity names that are stop words or single characters."),
    ray: Ray = False,
    ray_address: RayAddress = None,
    workers: Workers = None,
) -> None:
    """Every sentence mentioning both entities of a triple becomes an example of its relation."""
    check_ray_options(ray, ray_address, workers)
    kb = read_triples(triples)
    kb_aliases = read_aliases(aliases) if aliases else None
    summary = DSSummary()
    with ray_session(ray_address, workers) if ray or ray_address else nullcontext() as session:
        if session is None:
            docs = track(iter_documents(corpus, summary, one_per_line), "documents", show=True)
            examples = build_ds(kb, docs, summary, kb_aliases, ambiguous, drop_suspicious)
        else:
            examples = build_ds_ray(session, kb, corpus, summary, kb_aliases, ambiguous, drop_suspicious,
                                    one_per_line, workers, show=True)
        write_ds(out_path, examples)
    table = Table(title=f"{summary.examples} DS examples from {summary.sentences} sentences in {summary.files} files")
    table.add_column("relation")
    table.add_column("examples", justify="right")
    for rel, n in summary.per_relation.most_common():
        table.add_row(rel, str(n))
    out.print(table)
    skipped = [f"{summary.skipped_ambiguous} ambiguous pairs skipped" if ambiguous == "skip" else "",
               f"{summary.duplicates} duplicates dropped",
               f"{len(summary.suspicious_names)} suspicious entity names"
               f"{' dropped' if drop_suspicious else ' kept'}",
               *(f"file {f} skipped: {why}" for f, why in summary.skipped_files.items())]
    console.print("; ".join(s for s in skipped if s), highlight=False)
    console.print(f"written to {out_path}", highlight=False)
