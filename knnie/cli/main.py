"""The `knnie` command: train → memory build → tune → evaluate → predict (and `extract`, `ner`, `ds`, `zeroshot`,
`serve`)."""

from __future__ import annotations

import typer

from knnie.cli import ds, evaluate, extract, fewshot, memory, ner, predict, serve, train, tune, zeroshot

app = typer.Typer(
    help="knnie: relation extraction that consults a memory of labelled examples (kNN-RE).",
    no_args_is_help=True, pretty_exceptions_show_locals=False,
)
app.command("train")(train.train_command)
app.add_typer(memory.app, name="memory")
app.command("tune")(tune.tune_command)
app.command("evaluate")(evaluate.evaluate_command)
app.command("predict")(predict.predict_command)
app.command("extract")(extract.extract_command)
app.add_typer(ds.app, name="ds")
app.add_typer(ner.app, name="ner")
app.add_typer(zeroshot.app, name="zeroshot")
app.add_typer(fewshot.app, name="fewshot")
app.command("serve")(serve.serve_command)

if __name__ == "__main__":
    app()
