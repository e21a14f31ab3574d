"""``ltl continual``: meta-train OML and ANML on Omniglot's background characters."""

from __future__ import annotations

from pathlib import Path

import click

from learntolearn.cli.options import data_root_option, threads_option
from learntolearn.continual.runs import PRESETS, meta_train, omniglot_classes, preset


@click.group()
def continual() -> None:
    """Continual meta-learning: `ltl continual train PRESET` (resumable)."""


@continual.command()
@click.argument("preset_name", metavar="PRESET", type=click.Choice(sorted(PRESETS)))
@click.option("--run", "run_dir", type=click.Path(file_okay=False), default=None, help="Run folder [runs/<name>].")
@click.option("--seed", type=int, default=None)
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Meta-training steps (one class each).")
@threads_option
@data_root_option
def train(preset_name: str, run_dir: str | None, seed: int | None, steps: int | None, data_root: str | None) -> None:
    """Meta-train a preset on the first background characters, or continue its run."""
    config = preset(preset_name, seed=seed, steps=steps)
    run = Path(run_dir or Path("runs") / config.name)
    images = omniglot_classes("background", data_root)[: config.meta_train_classes]
    meta_train(config, images, run, log=click.echo)
    click.echo(f"meta-trained {config.name} in {run}")
