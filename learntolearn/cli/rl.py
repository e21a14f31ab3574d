"""``ltl rl``: meta-reinforcement learning runs (RL² on RL²'s bandits and tabular MDPs, MAML-RL on 2D navigation)."""

from __future__ import annotations

from pathlib import Path

import click

from learntolearn.cli.families import check_run_of
from learntolearn.cli.options import threads_option
from learntolearn.errors import ConfigError
from learntolearn.files import write_json
from learntolearn.rl import maml_rl_runs
from learntolearn.rl.runs import PRESETS, evaluate_rl2, preset, train_rl2


@click.group()
def rl() -> None:
    """Meta-reinforcement learning: `ltl rl train PRESET`, `ltl rl eval RUN`, `ltl rl plot RUN`."""


@rl.command()
@click.argument("preset_name", metavar="PRESET", type=click.Choice(sorted({**PRESETS, **maml_rl_runs.PRESETS})))
@click.option(
    "--run", "run_dir", type=click.Path(file_okay=False), default=None, help="Run folder (default: runs/<name>)."
)
@click.option("--seed", type=int, default=None)
@click.option(
    "--iterations", type=click.IntRange(min=1), default=None, help="Meta-iterations (PPO for RL², TRPO for MAML-RL)."
)
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="MAML-RL: processes on this machine, each simulating a share of every meta-batch.",
)
@threads_option
def train(preset_name: str, run_dir: str | None, seed: int | None, iterations: int | None, nproc: int) -> None:
    """Meta-train an RL² or MAML-RL preset, or continue its run from the last checkpoint."""
    if preset_name in maml_rl_runs.PRESETS:
        maml_config = maml_rl_runs.preset(preset_name, seed=seed, iterations=iterations)
        run = Path(run_dir or Path("runs") / maml_config.name)
        check_run_of(run, "ltl rl")
        if nproc > 1:
            maml_rl_runs.launch_maml_rl(maml_config, run, nproc)
        else:
            maml_rl_runs.train_maml_rl(maml_config, run, log=click.echo)
        click.echo(f"trained {maml_config.name} in {run}; evaluate it with: ltl rl eval {run}")
        return
    if nproc > 1:
        raise ConfigError("--nproc splits MAML-RL meta-batches; RL² presets train in one process")
    config = preset(preset_name, seed=seed, iterations=iterations)
    run = Path(run_dir or Path("runs") / config.name)
    check_run_of(run, "ltl rl")
    train_rl2(config, run, log=click.echo)
    click.echo(f"trained {config.name} in {run}; evaluate it with: ltl rl eval {run}")


@rl.command(name="eval")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--tasks", type=click.IntRange(min=2), default=None, help="Fixed held-out tasks [RL² 1000, MAML-RL 100].")
@click.option(
    "--steps", type=click.IntRange(min=0, max=20), default=3, show_default=True, help="MAML-RL adaptation steps."
)
@click.option(
    "--episodes",
    type=click.IntRange(min=1),
    default=None,
    help="MAML-RL: episodes per task for each adaptation step [the run's own].",
)
@click.option(
    "--step-budget",
    type=click.IntRange(min=1),
    default=None,
    help="MAML-RL navigation: sample each step as the MAML authors' code, episodes until they hold this many steps.",
)
@click.option(
    "--goal",
    type=(float, float),
    default=None,
    metavar="X Y",
    help="MAML-RL navigation: every task has this goal; the tasks differ in the episodes they sample.",
)
@threads_option
def eval_(
    run_dir: str,
    tasks: int | None,
    steps: int,
    episodes: int | None,
    step_budget: int | None,
    goal: tuple[float, float] | None,
) -> None:
    """Score a run on fixed held-out tasks (RL²: total reward per trial on the reference tables' tasks; MAML-RL:
    average return after 0..STEPS adaptation steps); into RUN/evaluation.json."""
    check_run_of(Path(run_dir), "ltl rl")
    if maml_rl_runs.is_maml_rl_run(Path(run_dir)):
        scored = maml_rl_runs.evaluate_maml_rl(
            Path(run_dir), tasks=tasks or 100, steps=steps, episodes=episodes, step_budget=step_budget, goal=goal
        )
        write_json(Path(run_dir) / "evaluation.json", scored)
        for step, (mean, ci, ended) in enumerate(zip(scored["mean"], scored["ci95"], scored["ended_early"])):
            share = sum(ended) / len(ended)
            click.echo(
                f"{scored['preset']}: {mean:.2f} ± {ci:.2f} average return after {step} adaptation steps"
                + (f" ({share:.0%} of episodes ended before the horizon)" if share else "")
            )
        return
    if episodes is not None or step_budget is not None or goal is not None:
        raise ConfigError(
            "--episodes, --step-budget and --goal set MAML-RL's evaluation; an RL² trial's episodes are its preset's"
        )
    scored = evaluate_rl2(Path(run_dir), tasks=tasks or 1000)
    write_json(Path(run_dir) / "evaluation.json", scored)
    click.echo(
        f"{scored['preset']}: {scored['mean']:.2f} ± {scored['ci95']:.2f} total reward per trial over {tasks or 1000} tasks"
    )


@rl.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
def plot(run_dir: str) -> None:
    """An RL run's training curve into RUN/training_curve.png: MAML-RL's return before and after adapting, RL²'s
    total reward per trial, per iteration."""
    from learntolearn.experiments.plots import plot_rl_history

    check_run_of(Path(run_dir), "ltl rl")
    click.echo(f"wrote {plot_rl_history(Path(run_dir))}")
