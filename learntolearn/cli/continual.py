"""``ltl continual``: meta-train OML and ANML on Omniglot's background characters, and score their streams."""

from __future__ import annotations

from pathlib import Path
from statistics import mean

import click

from learntolearn.cli.families import check_run_of
from learntolearn.cli.options import data_root_option, threads_option
from learntolearn.continual.runs import PRESETS, evaluate_run, meta_train, omniglot_classes, preset
from learntolearn.experiments.plots import plot_continual_curves
from learntolearn.files import write_json


@click.group()
def continual() -> None:
    """Continual meta-learning: `ltl continual train PRESET` (resumable), `ltl continual eval RUN`."""


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
    check_run_of(run, "ltl continual")
    images = omniglot_classes("background", data_root)[: config.meta_train_classes]
    meta_train(config, images, run, log=click.echo)
    click.echo(f"meta-trained {config.name} in {run}")


@continual.command(name="eval")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--classes", default="10,50,100,200,600", show_default=True, help="Stream lengths C, comma-separated.")
@click.option("--orders", type=click.IntRange(min=1), default=10, show_default=True, help="Random class orders per C.")
@click.option(
    "--lr", type=click.FloatRange(min=0, min_open=True), default=None, help="Online rate [chosen on meta-validation]."
)
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default="sgd", show_default=True)
@threads_option
@data_root_option
def eval_(run_dir: str, classes: str, orders: int, lr: float | None, optimizer: str, data_root: str | None) -> None:
    """Learn streams of C new Omniglot characters one drawing at a time; memorisation and generalisation
    accuracy per C into RUN/continual.json (and continual.png with matplotlib)."""
    run = Path(run_dir)
    check_run_of(run, "ltl continual")
    counts = [int(part) for part in classes.split(",") if part.strip()]
    scored = evaluate_run(run, counts, orders, lr, optimizer, data_root)
    write_json(run / "continual.json", scored)
    for count in counts:
        entry = scored["curves"][str(count)]
        click.echo(
            f"C={count}: memorisation {100 * mean(entry['memorisation']):.1f}%, "
            f"generalisation {100 * mean(entry['generalisation']):.1f}% over {orders} orders"
        )
    try:
        click.echo(f"plot: {plot_continual_curves({run.name: scored['curves']}, run / 'continual.png')}")
    except ImportError as err:
        click.echo(str(err))
