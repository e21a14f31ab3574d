"""``ltl automl``: which learner to run on a tabular classification data set, from experience on LCDB's."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

import click

from learntolearn.automl.pipelines import describe, pipeline
from learntolearn.automl.recommend import recommend
from learntolearn.automl.search import parse_budget, search, warm_start_trials
from learntolearn.automl.table import DEFAULT_MAX_BYTES, Table, meta_features, read_table
from learntolearn.files import atomic_write, check_writable, write_json


def table_options(command: Callable) -> Callable:
    """DATA, --target and --max-megabytes: what every command reading a user's table takes."""
    command = click.option(
        "--max-megabytes",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_BYTES // 1024**2,
        show_default=True,
        help="Largest file read into memory.",
    )(command)
    command = click.option("--target", required=True, help="The column holding the class labels.")(command)
    return click.argument("data", type=click.Path(dir_okay=False))(command)


@click.group()
def automl() -> None:
    """Meta-learning across data sets: `ltl automl recommend|search DATA.csv --target COLUMN`."""


@automl.command(name="recommend")
@table_options
@click.option("--k", type=click.IntRange(min=1), default=5, show_default=True, help="Nearest LCDB data sets used.")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Learners listed.")
@click.option(
    "--check",
    type=click.IntRange(min=0),
    default=0,
    help="Also cross-validate this many of the top learners on DATA (5-fold, stratified) and print their accuracy.",
)
@click.option("--json", "json_path", type=click.Path(dir_okay=False), help="Also write the recommendation here.")
def recommend_command(
    data: str, target: str, k: int, top: int, check: int, max_megabytes: int, json_path: str | None
) -> None:
    """Rank LCDB's 20 scikit-learn learners for DATA by how they did on the LCDB data sets most like it."""
    table = read_table(data, target, max_bytes=max_megabytes * 1024**2)
    for note in table.notes:
        click.echo(f"note: {note}", err=True)
    features = meta_features(table)
    click.echo(
        f"{table.name}: {len(table.target):,} rows, {table.features.shape[1]} feature columns "
        f"({len(table.numeric)} numeric, {len(table.categorical)} categorical), "
        f"{int(features['NumberOfClasses'])} classes"
    )
    found = recommend(features, k=k)
    checked = cross_validate(table, [name for name, _ in found.learners[:check]])
    click.echo(f"\nlearners by mean accuracy on the {k} nearest LCDB data sets (their defaults, LCDB's preprocessing):")
    for rank, (name, score) in enumerate(found.learners[:top], start=1):
        result = checked.get(name)
        measured = "" if result is None else f"   cross-validated here: {cell(result)}"
        click.echo(f"{rank:>3}. {100 * score:6.2f}%  {describe(name)}{measured}")
    click.echo("\nnearest LCDB data sets (OpenML name and id, distance in standardised meta-features):")
    for name, distance in found.nearest:
        click.echo(f"     {name}  {distance:.2f}")
    if json_path:
        record = {
            "data": str(Path(data).resolve()),
            "target": target,
            "notes": table.notes,
            "meta_features": features,
            "learners": [
                {"learner": name, "configuration": describe(name), "nearest_mean_accuracy": score}
                | ({"cross_validated_accuracy": checked[name]} if name in checked else {})
                for name, score in found.learners
            ],
            "nearest": [{"dataset": name, "distance": distance} for name, distance in found.nearest],
        }
        write_json(Path(json_path), record)


def cell(result: float | str) -> str:
    return f"{100 * result:.2f}%" if isinstance(result, float) else f"failed ({result})"


def cross_validate(table: Table, learners: list[str]) -> dict[str, float | str]:
    """Mean accuracy of each learner's pipeline over 5 stratified folds of ``table`` (seeded), or why it failed
    (as on some LCDB data sets: e.g. multinomial naive Bayes refuses negative numbers)."""
    from numpy.linalg import LinAlgError
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    folds = StratifiedKFold(n_splits=min(5, int(table.target.value_counts().min())), shuffle=True, random_state=0)
    scores: dict[str, float | str] = {}
    for name in learners:
        try:
            scores[name] = float(
                cross_val_score(
                    pipeline(name, table), table.features, table.target, cv=folds, error_score="raise"
                ).mean()
            )
        except (ValueError, LinAlgError) as err:
            scores[name] = str(err).split("\n")[0]
    return scores


@automl.command(name="search")
@table_options
@click.option("--budget", default="5m", show_default=True, help="Time for the search: 90s, 5m, 1h.")
@click.option("--trials", type=click.IntRange(min=1), default=None, help="Stop after this many trials at the latest.")
@click.option(
    "--warm",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="First trials: the best-recommended learners at their defaults (0: a cold search).",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None, help="Model file (default: DATA's name.joblib).")
@click.option("--force", is_flag=True, help="Replace an existing model file.")
def search_command(
    data: str,
    target: str,
    budget: str,
    trials: int | None,
    warm: int,
    seed: int,
    out: str | None,
    force: bool,
    max_megabytes: int,
) -> None:
    """Search pipelines for DATA with Optuna, warm-started by `recommend`; save the best one, refitted on all rows."""
    import joblib  # scikit-learn's own model persistence

    seconds = parse_budget(budget)
    path = Path(out or Path(data).with_suffix(".joblib").name)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force to replace it or --out to write elsewhere")
    check_writable(path)
    table = read_table(data, target, max_bytes=max_megabytes * 1024**2)
    for note in table.notes:
        click.echo(f"note: {note}", err=True)
    if warm and importlib.util.find_spec("lcdb") is None:
        click.echo("note: the warm start learns from LCDB (pip install lcdb==0.1.0); searching cold", err=True)
        warm = 0
    ranked = [name for name, _ in recommend(meta_features(table)).learners] if warm else []
    first = warm_start_trials(ranked, warm)
    if first:
        click.echo(f"warm start: {', '.join(trial['learner'] for trial in first)} at their defaults first")
    result = search(table, trials=trials, seconds=seconds, warm_start=first, seed=seed, log=click.echo)
    with atomic_write(path, "wb") as handle:
        joblib.dump(result.model, handle)
    click.echo(
        f"best of {len(result.trials)} trials: {100 * result.accuracy:.2f}% cross-validated accuracy, "
        f"{describe(result.learner)} with {result.arguments}"
        + (" on standardised numbers" if result.standardise else "")
    )
    click.echo(
        f"saved the pipeline, refitted on all {len(table.target):,} rows, to {path} "
        "(joblib.load it, then .predict(a DataFrame with the same columns); load only files you made)"
    )
