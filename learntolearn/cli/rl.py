"""``ltl rl``: meta-reinforcement learning runs (RL² on RL²'s bandits and tabular MDPs)."""

from __future__ import annotations

from pathlib import Path

import click

from learntolearn.cli.options import threads_option
from learntolearn.files import write_json
from learntolearn.rl.runs import PRESETS, evaluate_rl2, preset, train_rl2


@click.group()
def rl() -> None:
    """Meta-reinforcement learning: `ltl rl train PRESET`, `ltl rl eval RUN`."""


@rl.command()
@click.argument("preset_name", metavar="PRESET", type=click.Choice(sorted(PRESETS)))
@click.option(
    "--run", "run_dir", type=click.Path(file_okay=False), default=None, help="Run folder (default: runs/<name>)."
)
@click.option("--seed", type=int, default=None)
@click.option("--iterations", type=click.IntRange(min=1), default=None, help="PPO iterations of meta-training.")
@threads_option
def train(preset_name: str, run_dir: str | None, seed: int | None, iterations: int | None) -> None:
    """Meta-train an RL² preset, or continue its run from the last checkpoint."""
    config = preset(preset_name, seed=seed, iterations=iterations)
    run = Path(run_dir or Path("runs") / config.name)
    train_rl2(config, run, log=click.echo)
    click.echo(f"trained {config.name} in {run}; evaluate it with: ltl rl eval {run}")


@rl.command(name="eval")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--tasks", type=click.IntRange(min=2), default=1000, show_default=True, help="Fixed held-out tasks.")
@threads_option
def eval_(run_dir: str, tasks: int) -> None:
    """Total reward per trial on fixed held-out tasks (the reference tables' tasks); into RUN/evaluation.json."""
    scored = evaluate_rl2(Path(run_dir), tasks=tasks)
    write_json(Path(run_dir) / "evaluation.json", scored)
    click.echo(
        f"{scored['preset']}: {scored['mean']:.2f} ± {scored['ci95']:.2f} total reward per trial over {tasks} tasks"
    )
