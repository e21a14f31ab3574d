"""``ltl scan``: train, score and use sequence models on SCAN (meta seq2seq, seq2seq, transformer)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from learntolearn.cli.families import check_run_of
from learntolearn.cli.options import data_root_option, threads_option
from learntolearn.compositional.scan_runs import PRESETS, ScanTranslator, preset, score_episodes, score_run, train_run
from learntolearn.errors import LtlError
from learntolearn.files import write_json


@click.group()
def scan() -> None:
    """Compositional generalisation on SCAN: `ltl scan train`, `ltl scan eval`, `ltl scan translate`."""


@scan.command()
@click.argument("preset_name", metavar="PRESET", type=click.Choice(sorted(PRESETS)))
@click.option(
    "--run", "run_dir", type=click.Path(file_okay=False), default=None, help="Run folder (default: runs/<name>)."
)
@click.option("--seed", type=int, default=None)
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Training steps (episodes for meta seq2seq).")
@threads_option
@data_root_option
def train(preset_name: str, run_dir: str | None, seed: int | None, steps: int | None, data_root: str | None) -> None:
    """Train a SCAN preset, or continue its run from the last checkpoint."""
    config = preset(preset_name, seed=seed, steps=steps)
    run = Path(run_dir or Path("runs") / config.name)
    check_run_of(run, "ltl scan")
    train_run(config, run, data_root, log=click.echo)
    click.echo(f"trained {config.name} in {run}; score it with: ltl scan eval {run}")


@scan.command(name="eval")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--episodes",
    type=click.IntRange(min=1),
    default=None,
    help="Meta seq2seq and MLC: also score this many held-out episodes of their training distribution.",
)
@threads_option
@data_root_option
def eval_(run_dir: str, episodes: int | None, data_root: str | None) -> None:
    """Exact-match accuracy on the run's whole test split; per-command results into RUN/evaluation.json."""
    check_run_of(Path(run_dir), "ltl scan")
    scored = score_run(run_dir, data_root)
    if episodes:
        scored["held_out_episodes"] = held = score_episodes(run_dir, data_root, episodes)
        click.echo(
            f"held-out episodes: {100 * held['permuted_meanings']:.2f}% of queries exactly right under permuted "
            f"meanings, {100 * held['scan_meanings']:.2f}% under SCAN's own"
        )
    write_json(Path(run_dir) / "evaluation.json", scored)
    click.echo(f"{100 * scored['accuracy']:.2f}% of {scored['test_commands']} test commands exactly right")


@scan.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("commands", nargs=-1)
@click.option(
    "--meaning",
    "meanings",
    multiple=True,
    metavar="WORD=ACTION",
    help="Meta seq2seq only: a primitive's (on around right: a direction's) meaning in the study examples, "
    "e.g. jump=I_WALK (repeatable).",
)
@click.option("--max-length", type=click.IntRange(min=1), default=None, help="Most actions per command.")
@threads_option
def translate(run_dir: str, commands: tuple[str, ...], meanings: tuple[str, ...], max_length: int | None) -> None:
    """Print the actions of each COMMAND (or of each line of standard input) with a trained run."""
    check_run_of(Path(run_dir), "ltl scan")
    pairs = {}
    for meaning in meanings:
        word, separator, action = meaning.partition("=")
        if not separator:
            raise LtlError(f"--meaning {meaning!r}: write WORD=ACTION, e.g. jump=I_WALK")
        pairs[word.strip()] = action.strip()
    translator = ScanTranslator(run_dir, pairs)
    lines = list(commands) or [line.strip() for line in sys.stdin if line.strip()]
    if not lines:
        raise LtlError("no commands: give them as arguments or one per line on standard input")
    for line, (actions, finished) in zip(lines, translator.translate(lines, max_length)):
        if len(line.split()) > translator.longest_command:
            click.echo(
                f"note: {line!r} is longer than any training command ({translator.longest_command} words)", err=True
            )
        click.echo(" ".join(actions) + ("" if finished else "  [stopped at the length limit]"))
