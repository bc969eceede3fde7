"""`knnie extract`: raw text → entities → relations with an NER and an RE model (`knnie.Pipeline`)."""

from __future__ import annotations

from pathlib import Path

import typer

from knnie.cli.common import command, console
from knnie.cli.options import BatchSize, Device
from knnie.cli.outputs import check_output
from knnie.data.readers import read_documents
from knnie.io import write_jsonl
from knnie.pipeline import Pipeline


@command
def extract_command(
    ner: Path = typer.Option(..., "--ner", help="An NER model directory (`knnie ner train`)."),
    re: Path = typer.Option(..., "--re", help="A relation model directory (`knnie train`) whose entity types "
                            "include those of the NER model."),
    input: Path = typer.Option(..., "--input", help="Documents: a .jsonl (or .json) file of {\"text\"[, \"id\"]} "
                               "records (DyGIE documents are read as pre-tokenised sentences), or any other file as "
                               "plain text, one document per non-blank line."),
    output: Path = typer.Option(..., "--output", help="JSONL, one extraction per document, in input order."),
    neighbours: int = typer.Option(0, min=0, help="Memory entries to return with every entity and relation."),
    window: int = typer.Option(0, min=0, help="Also pair mentions up to this many sentences apart."),
    batch_size: BatchSize = 64,
    device: Device = "auto",
) -> None:
    """Write {id?, text, entities: [{id, start, end, type, text, score}], relations: [{head, tail, label,
    probability, p_model, p_knn}], warnings} per document: start and end are character offsets into text,
    head and tail entity ids; pairs of the no-relation label are left out. Text is split into sentences
    (pysbd) and every ordered pair of mentions within a sentence is classified."""
    check_output(output)
    documents = read_documents(input)  # bad input fails before the models are loaded
    pipeline = Pipeline.from_pretrained(ner, re, device=device)
    extractions = pipeline.extract([d.text if d.text is not None else d for d in documents], neighbours, window,
                                   batch_size, show_progress=True)
    write_jsonl(output, ({**d.meta, **x.to_dict()} for d, x in zip(documents, extractions)))
    console.print(f"{len(extractions)} documents: {sum(len(x.entities) for x in extractions)} entities and "
                  f"{sum(len(x.relations) for x in extractions)} relations written to {output}"
                  + (f" ({sum(len(x.warnings) for x in extractions)} warnings in it)"
                     if any(x.warnings for x in extractions) else ""), highlight=False)
