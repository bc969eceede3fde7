"""`knnie fewshot ...`: few-shot relation extraction (TKRE): new relations defined by a few examples each."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from knnie.cli.common import command, console, load_relations, out
from knnie.cli.options import Seed
from knnie.cli.zeroshot import load_relation_types
from knnie.errors import KnnieError
from knnie.llm import load_llm
from knnie.llm.load import SPECS
from knnie.tasks.fewshot.generate import explain_support, generate_examples, support_by_relation

app = typer.Typer(help="Few-shot relation extraction (TKRE): relations defined by name, description and K examples "
                       "each; LLM-grown training data; encoder pre-training; N-way K-shot evaluation.",
                  no_args_is_help=True)


@app.command("generate")
@command
def generate_command(
    schema: Path = typer.Option(..., help='The relations: knnie\'s JSON/JSONL {"id", "name", "description"}, FewRel '
                                "pid2name.json or RE-Matching's."),
    support: Path = typer.Option(..., help="Labelled examples of the relations (labels are schema ids): the "
                                 "demonstrations, and the examples to explain."),
    per_relation: int = typer.Option(50, min=0, help="Synthetic examples wanted per relation (what --out already "
                                     "holds counts: a rerun resumes)."),
    out_path: Path = typer.Option(..., "--out", help="Synthetic examples, JSON lines of knnie's plain format "
                                  '{"text", "head", "tail", "label", "generated": true}, appended as made.'),
    explanations: Path = typer.Option(None, help="Also explain each support example here (JSON lines, appended; "
                                      "resumed on a rerun)."),
    llm: str = typer.Option("local", help=f"The LLM: {SPECS}."),
    llm_model: str = typer.Option(None, help="The model an HTTP server serves (default: $KNNIE_LLM_MODEL)."),
    threads: int = typer.Option(None, min=1, help="CPU threads of a local model (default: all cores)."),
    exclude: list[str] = typer.Option([], help="A relation id to generate nothing for (repeat the option), e.g. "
                                      "SemEval's Other."),
    tries: int = typer.Option(3, min=1, help="Requests per missing example at most (answers may be dropped)."),
    temperature: float = typer.Option(0.8, min=0.0, help="Sampling temperature of synthetic examples."),
    seed: Seed = 0,
) -> None:
    """Explain the support examples and generate schema-constrained synthetic examples with an LLM, validated:
    answers that do not parse, are cut short, name a head or tail not in the sentence, repeat one or copy a
    support sentence are dropped and counted."""
    relations = load_relation_types(schema, "schema")
    examples = load_relations(support, "support")
    support_by_relation(examples, relations)
    unknown = sorted(set(exclude) - {r.id for r in relations})
    if unknown:
        raise typer.BadParameter(f"not relations of the schema: {', '.join(unknown)}", param_hint="--exclude")
    wanted = [r for r in relations if r.id not in exclude]
    model = load_llm(llm, threads=threads, model=llm_model)
    console.print(f"LLM: {model.name}", highlight=False)
    if explanations is not None:
        e = explain_support(model, wanted, examples, explanations, seed=seed, tries=tries, show_progress=True)
        out.print(f"explanations: {e.written} written ({e.with_trigger} with a valid trigger), {e.existing} already "
                  f"in {explanations}, {e.failed} failed after {tries} tries; {e.asked} asked in {e.seconds:.0f} s; "
                  f"dropped: {_reasons(e.dropped)}", highlight=False)
        if e.interrupted:
            raise KnnieError(f"interrupted: what was written stays in {explanations}; rerun to resume")
    g = generate_examples(model, wanted, examples, per_relation, out_path, seed=seed, tries=tries,
                          temperature=temperature, show_progress=True)
    table = Table(title="synthetic examples")
    for col in ("asked", "kept", "dropped", "already there", "seconds", "kept / min"):
        table.add_column(col)
    table.add_row(str(g.asked), str(g.kept), str(sum(g.dropped.values())), str(g.existing), f"{g.seconds:.0f}",
                  f"{60 * g.kept / g.seconds:.1f}" if g.seconds else "-")
    out.print(table)
    out.print(f"{g.kept} synthetic examples kept, appended to {out_path}; dropped: {_reasons(g.dropped)}",
              highlight=False)
    if g.interrupted:
        raise KnnieError(f"interrupted: what was written stays in {out_path}; rerun to resume")
    short = {r: n for r, n in g.per_relation.items() if n < per_relation}
    if short:
        out.print(f"[yellow]{len(short)} relations have fewer than {per_relation}[/] (rerun to ask again): "
                  + ", ".join(f"{r} {n}" for r, n in list(short.items())[:10]), highlight=False)


def _reasons(dropped: dict[str, int]) -> str:
    """'reason n, ...', the most frequent first."""
    return ", ".join(f"{reason} {n}" for reason, n in sorted(dropped.items(), key=lambda x: -x[1])) or "none"
