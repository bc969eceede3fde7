"""`knnie fewshot`: few-shot relation extraction (TKRE): pre-train an encoder, classify from a support set."""

from __future__ import annotations

from pathlib import Path

import typer

from knnie.cli.common import command, console
from knnie.cli.options import BatchSize, Device, Seed
from knnie.encoders import DEFAULT_ENCODER

app = typer.Typer(help="Few-shot relation extraction: new relations from K examples each (TKRE).",
                  no_args_is_help=True)


@app.command("pretrain")
@command
def pretrain_command(
    data: Path = typer.Option(..., help="Labelled relation examples (any supported format) of many relations."),
    out: Path = typer.Option(..., "--out", help="Encoder directory to write (Hugging Face, with its tokenizer)."),
    synthetic: Path = typer.Option(None, help="Synthetic examples (`knnie fewshot generate`), added to both stages."),
    explanations: Path = typer.Option(None, help="Explanations (`knnie fewshot generate`): their triggers are the "
                                                 "relation spans MSLM masks (else the words between the entities)."),
    encoder: str = typer.Option(DEFAULT_ENCODER, help="Encoder name or local Hugging Face model directory to start "
                                                      "from."),
    mslm_epochs: int = typer.Option(3, min=0, help="Epochs of stage 1, masked span language modelling (0: skip)."),
    scl_epochs: int = typer.Option(3, min=0, help="Epochs of stage 2, span-level contrastive learning (0: skip)."),
    lr: float = typer.Option(5e-5, help="Encoder learning rate (the new MLM head uses 1e-3)."),
    batch_size: BatchSize = 32,
    seed: Seed = 42,
    max_examples: int = typer.Option(None, min=1, help="Pre-train on a seeded subset of the data of this size, "
                                                       "every relation kept (synthetic examples are added whole)."),
    per_relation: int = typer.Option(4, min=2, help="Examples of one relation together in a contrastive batch."),
    temperature: float = typer.Option(0.1, help="InfoNCE temperature τ."),
    max_length: int = typer.Option(128, help="Sub-word limit; longer sentences are windowed around the entities."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Allow --out to be a non-empty directory that is not a "
                                                             "pre-trained encoder: everything in it is replaced."),
    device: Device = "auto",
) -> None:
    """Pre-train an encoder for few-shot RE in two stages, MSLM then SCL; any knnie training loads the result."""
    from knnie.tasks.fewshot.pretrain import PretrainConfig, StageReport, pretrain_encoder

    config = PretrainConfig(mslm_epochs=mslm_epochs, scl_epochs=scl_epochs, lr=lr, batch_size=batch_size, seed=seed,
                            max_length=max_length, temperature=temperature, per_relation=per_relation,
                            max_examples=max_examples)

    def heard(stage: str, report: StageReport) -> None:
        for h in report.history:
            console.print(f"{stage} epoch {h['epoch']}/{report.epochs}: training loss {h['train_loss']:.4f}",
                          highlight=False)
        console.print(f"{stage}: {report.examples} examples, loss {report.loss_before:.4f} → {report.loss_after:.4f} "
                      f"on a fixed sample, {report.seconds:.0f} s", highlight=False)

    record = pretrain_encoder(data, out, config, encoder, synthetic, explanations, device, show_progress=True,
                              overwrite=overwrite, on_stage=heard)
    d = record["data"]
    console.print(f"saved {out}: {d['examples']} examples of {d['relations']} relations + {d['synthetic_examples']} "
                  f"synthetic, {d['triggers_used']} relation spans from explanations; use it with "
                  f"`knnie train --encoder {out}` or `knnie fewshot evaluate --encoder {out}`", highlight=False)
