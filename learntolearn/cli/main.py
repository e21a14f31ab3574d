"""The ``ltl`` command: data sets, demo, meta-training and evaluation."""

from __future__ import annotations

import csv
import json
import time
import warnings
from pathlib import Path

import click

from learntolearn.algorithms import ALGORITHMS
from learntolearn.data import DATASETS, EpisodeSet, load_dataset
from learntolearn.data.archives import DataError
from learntolearn.data.lake_runs import load_lake_runs
from learntolearn.data.roots import describe_root_choice, resolve_data_root
from learntolearn.data.status import dataset_status
from learntolearn.engine.config import INNER_OPTIMIZERS, LR_SCHEDULES, TrainConfig, check_keys, read_yaml
from learntolearn.engine.distributed import DEFAULT_TIMEOUT_SECONDS
from learntolearn.engine.evaluate import evaluate
from learntolearn.engine.launch import DistributedTrainingError, launch_training
from learntolearn.engine.memory import reuse_freed_memory
from learntolearn.engine.model_file import export_model, load_run
from learntolearn.engine.plots import plot_accuracy_vs_shots, plot_learning_curves
from learntolearn.engine.presets import PRESETS
from learntolearn.engine.reproduce import TABLES, read_table, write_table
from learntolearn.engine.reproduce import reproduce as run_table
from learntolearn.engine.trainer import (
    TEST_EPISODE_SEED,
    Trainer,
    provenance,
)
from learntolearn.fewshot import FewShotClassifier
from learntolearn.nn.backbones import BACKBONES

data_root_option = click.option("--data-root", type=click.Path(file_okay=False), default=None,
                                help="Folder holding <name>/ data sets (default: $LTL_DATA, else ~/.cache/learntolearn).")
download_option = click.option("--download/--no-download", default=True, show_default=True,
                               help="Fetch missing official archives (checksum-verified).")


def episode_options(f):
    for option in reversed([
        click.option("--dataset", type=click.Choice(DATASETS.names()), default="omniglot", show_default=True),
        click.option("--split", default="vinyals", show_default=True, help="Class split of the data set."),
        click.option("--ways", type=click.IntRange(min=2), default=5, show_default=True, help="Classes per test episode (N)."),
        click.option("--shots", type=click.IntRange(min=1), default=1, show_default=True, help="Support examples per class (K)."),
        click.option("--queries", type=click.IntRange(min=1), default=15, show_default=True, help="Query examples per class."),
        click.option("--seed", type=int, default=0, show_default=True),
    ]):
        f = option(f)
    return f


class FriendlyErrors(click.Group):
    """Turn expected user errors into one clear line instead of a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (DataError, KeyError, ValueError, FileExistsError, FileNotFoundError, TypeError, FloatingPointError,
                ImportError, DistributedTrainingError) as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            raise click.ClickException(message) from err


@click.group(cls=FriendlyErrors, context_settings={"help_option_names": ["-h", "--help"]})
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


@cli.command()
@episode_options
@click.option("--algorithm", type=click.Choice(ALGORITHMS.names()), default="protonet", show_default=True)
@click.option("--backbone", type=click.Choice(BACKBONES.names()), default="conv4", show_default=True)
@click.option("--train-ways", type=int, default=None, help="Classes per training episode (default: --ways).")
@click.option("--train-shots", type=click.IntRange(min=1), default=None,
              help="Support examples per class in training episodes (default: --shots; Reptile's paper uses 10).")
@click.option("--train-queries", type=int, default=None, help="Queries per class in training (default: --queries).")
@click.option("--train-subset", default="train", show_default=True)
@click.option("--val-subset", default="val", show_default=True)
@click.option("--test-subset", default="test", show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=1000, show_default=True, help="Meta-training steps.")
@click.option("--meta-batch", type=click.IntRange(min=1), default=1, show_default=True, help="Tasks per step.")
@click.option("--lr", type=float, default=1e-3, show_default=True)
@click.option("--lr-halve-every", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--lr-schedule", type=click.Choice(LR_SCHEDULES), default="step", show_default=True,
              help="step: halve the outer learning rate every --lr-halve-every steps; linear: anneal it to 0 at the "
                   "last step (Reptile's schedule).")
@click.option("--val-every", type=click.IntRange(min=0), default=500, show_default=True, help="0 disables validation.")
@click.option("--val-episodes", type=click.IntRange(min=2), default=500, show_default=True)
@click.option("--patience", type=click.IntRange(min=0), default=0, show_default=True,
              help="Stop after this many validations without a new best (0: never stop early).")
@click.option("--test-episodes", type=click.IntRange(min=2), default=1000, show_default=True)
@click.option("--image-size", type=click.IntRange(min=4), default=28, show_default=True)
@click.option("--outer-optimizer", type=click.Choice(["adam", "sgd"]), default="adam", show_default=True,
              help="Meta-optimizer (Reptile's paper update is sgd with --lr = outer step size).")
@click.option("--inner-lr", type=float, default=0.4, show_default=True, help="Inner-loop step size (MAML family).")
@click.option("--inner-steps", type=click.IntRange(min=1), default=1, show_default=True,
              help="Inner steps during meta-training (MAML family).")
@click.option("--test-inner-steps", type=click.IntRange(min=1), default=3, show_default=True,
              help="Inner steps at evaluation (MAML family).")
@click.option("--inner-batch", type=click.IntRange(min=0), default=0, show_default=True,
              help="Reptile: support examples per inner step, drawn in shuffled passes (0: the whole support set).")
@click.option("--inner-optimizer", type=click.Choice(INNER_OPTIMIZERS), default="sgd", show_default=True,
              help="Reptile's inner optimiser; adam is Adam with beta1=0 whose statistics carry across tasks "
                   "(Nichol et al. 2018).")
@click.option("--first-order", is_flag=True, help="First-order MAML / ANIL / Meta-SGD.")
@click.option("--batched", is_flag=True, help="vmap the meta-batch instead of looping over tasks.")
@click.option("--compiled", is_flag=True, help="MAML, ANIL, Meta-SGD: run each task's meta-training loss through "
              "torch.compile (compiled at the first step; faster on small tasks, slower with 15 queries).")
@click.option("--per-step-rates", is_flag=True, help="MAML++: learn an inner rate per parameter tensor and step (maml).")
@click.option("--multi-step-loss-steps", type=click.IntRange(min=0), default=0, show_default=True,
              help="MAML++: query loss after every inner step, annealed to the last over this many steps (maml; 0: off).")
@click.option("--full-context", is_flag=True, help="Matching Networks' full context embeddings.")
@click.option("--sequence-model", type=click.Choice(["lstm", "transformer"]), default="lstm", show_default=True,
              help="The recurrent learner's sequence model.")
@click.option("--memory", type=click.Choice(["lru", "ntm"]), default="lru", show_default=True,
              help="The memory-augmented network's memory: least-recently-used (Santoro et al.) or Neural Turing Machine.")
@click.option("--distance", type=click.Choice(["cosine", "scaled-cosine", "euclidean"]), default="cosine",
              show_default=True, help="Matching Networks' attention kernel (the paper: cosine).")
@click.option("--tasks-per-backward", type=click.IntRange(min=0), default=0, show_default=True,
              help="Backpropagate the meta-batch in chunks of this many tasks to cut peak memory (0: all at once).")
@click.option("--precision", type=click.Choice(["float32", "bfloat16"]), default="float32", show_default=True,
              help="bfloat16: mixed-precision autocast for the convolutions of metric-based algorithms and for "
                   "the query passes of maml, anil and metasgd (their inner loops stay float32).")
@click.option("--adapt-steps", type=click.IntRange(min=1), default=100, show_default=True,
              help="SGD steps fitting the new head per task (baseline, baseline++, finetune).")
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=100, show_default=True,
              help="Steps between atomic checkpoints (last.pt) that --resume continues from.")
@click.option("--out", "run_dir", type=click.Path(file_okay=False), default=None, help="Run folder to create.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="YAML (or JSON) file of config keys; options given explicitly override it, and it overrides --preset.")
@click.option("--preset", type=click.Choice(PRESETS.names()), default=None,
              help="Start from a paper setting (see `ltl presets`).")
@click.option("--dump-config", is_flag=True, help="Print the resolved config as YAML and exit without training.")
@click.option("--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
              help="Continue the run in this folder from its last checkpoint; only --steps may be raised.")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes on this machine sharing each meta-batch (torch.distributed; same result as 1).")
@click.option("--dist-timeout", type=click.FloatRange(min=1), default=DEFAULT_TIMEOUT_SECONDS, show_default=True,
              help="Seconds a process waits for the others in a collective before the job fails.")
@data_root_option
@download_option
@click.pass_context
def train(ctx: click.Context, run_dir: str | None, config_file: str | None, preset: str | None, dump_config: bool,
          resume_dir: str | None, nproc: int, dist_timeout: float, data_root: str | None, download: bool,
          **options) -> None:
    """Meta-train an algorithm, then report accuracy on fixed test episodes with a 95% CI.

    The config is built from the defaults, then --preset, then --config FILE, then the options given
    on the command line, each overriding the one before. --nproc is not part of the config: a run may
    be resumed with another number of processes.
    """
    given = {k: v for k, v in options.items() if ctx.get_parameter_source(k) is not click.core.ParameterSource.DEFAULT}
    if resume_dir:
        extra = ["--" + key.replace("_", "-") for key in sorted(set(given) - {"steps"})] + [name for name, value in
                                                    (("--out", run_dir), ("--config", config_file), ("--preset", preset))
                                                    if value]
        if extra:
            raise click.UsageError(f"--resume continues a run with its saved config; drop {', '.join(extra)} "
                                   f"(only --steps may be given, to train longer)")
        run_dir, config = resume_dir, _resumed_config(Path(resume_dir), given.get("steps"))
    else:
        values = {**options, **(PRESETS.get(preset).config if preset else {})}
        if config_file:
            file_values = read_yaml(config_file)
            check_keys(file_values, source=f"{config_file}")
            values.update(file_values)
        config = TrainConfig.from_dict({**values, **given})
        if dump_config:
            click.echo(config.to_yaml(), nl=False)
            return
        if run_dir is None:
            raise click.UsageError("give --out RUN_DIR, the run folder to create (or --resume RUN_DIR to continue one)")
        if Path(run_dir, "config.json").exists():
            raise click.UsageError(f"{run_dir} already holds a run; continue it with `ltl train --resume {run_dir}` "
                                   f"(add --steps N to train longer) or give another --out")
    if nproc > 1:
        result = launch_training(nproc, config, run_dir, data_root=data_root, download=download,
                                 resume=bool(resume_dir), timeout=dist_timeout)
    else:
        trainer = Trainer(config, run_dir, data_root=data_root, download=download, resume=bool(resume_dir),
                          distributed_timeout=dist_timeout)
        result = trainer.run()
    if result is not None:
        click.echo(f"test accuracy {result} (run folder {run_dir})")


def _resumed_config(run_dir: Path, steps: int | None) -> TrainConfig:
    """The run's saved config, with ``steps`` raised to ``steps`` when given and larger."""
    path = run_dir / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{run_dir} is not a run folder (no config.json); nothing to resume")
    saved = json.loads(path.read_text())
    return TrainConfig.from_dict({**saved, "steps": max(steps or 0, saved["steps"])})


@cli.command()
def presets() -> None:
    """List the named paper settings, what they follow and where they deviate."""
    for name in PRESETS.names():
        preset = PRESETS.get(name)
        click.echo(f"{name}\n  follows: {preset.source}\n  deviates: {preset.deviations}")


@cli.command(name="eval")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--subset", default=None, help="Subset to evaluate on (default: the run's test subset).")
@click.option("--lake-runs", is_flag=True, help="Evaluate on the 20 Lake et al. within-alphabet 20-way one-shot runs.")
@click.option("--ways", type=int, default=None, help="Override the run's test ways.")
@click.option("--shots", type=int, default=None, help="Override the run's test shots.")
@click.option("--queries", type=int, default=None, help="Override the run's test queries.")
@click.option("--episodes", type=click.IntRange(min=2), default=1000, show_default=True)
@click.option("--episode-seed", type=int, default=TEST_EPISODE_SEED, show_default=True)
@data_root_option
@download_option
def eval_(run_dir: str, subset, lake_runs, ways, shots, queries, episodes, episode_seed, data_root, download) -> None:
    """Evaluate a trained run's best checkpoint on fixed episodes (mean accuracy ± 95% CI).

    Each evaluation is also appended, with its command and commit, to RUN_DIR/evaluations.jsonl.
    """
    run = Path(run_dir)
    model = load_run(run, data_root)
    config, checkpoint, algorithm = model.config, model.source, model.algorithm
    options = {"data_root": data_root, "image_size": config.image_size, "download": download}
    if lake_runs:
        tasks = load_lake_runs(**options)
        total, label = len(tasks), "Lake 20-way within-alphabet one-shot runs"
    else:
        data = load_dataset(config.dataset, config.split, subset or config.test_subset, **options)
        episode_set = EpisodeSet.generate(data, ways or config.ways, shots or config.shots, queries or config.queries,
                                          episodes, episode_seed)
        tasks, total = episode_set.tasks(data), episodes
        label = f"{data.name} {ways or config.ways}-way {shots or config.shots}-shot"
    result = evaluate(algorithm, tasks, total=total)
    click.echo(f"{label}: accuracy {result} ({checkpoint})")
    record = {"evaluation": label, "accuracy": result.mean, "ci95": result.ci95, "episodes": total,
              "episode_seed": None if lake_runs else episode_seed, "checkpoint": checkpoint.name, **provenance()}
    with open(run / "evaluations.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


@cli.command()
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--shots", default="1,2,5,10", show_default=True,
              help="Comma-separated K values for the accuracy-versus-shots plot; empty to skip it.")
@click.option("--queries", type=click.IntRange(min=1), default=5, show_default=True,
              help="Queries per class in the accuracy-versus-shots episodes.")
@click.option("--episodes", type=click.IntRange(min=2), default=200, show_default=True,
              help="Fixed test episodes per point of the accuracy-versus-shots plot.")
@data_root_option
def plot(run_dir: str, shots: str, queries: int, episodes: int, data_root: str | None) -> None:
    """Write learning_curves.png and accuracy_vs_shots.png (with .json) into RUN_DIR (needs matplotlib)."""
    try:
        shot_values = sorted({int(k) for k in shots.split(",") if k.strip()})
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {shots!r}", param_hint="--shots") from None
    click.echo(f"wrote {plot_learning_curves(run_dir)}")
    if shot_values:
        click.echo(f"wrote {plot_accuracy_vs_shots(run_dir, shot_values, queries=queries, episodes=episodes, data_root=data_root)}")


@cli.command()
@click.argument("table", type=click.Choice(TABLES.names()))
@click.option("--runs", "runs_dir", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="Folder of run folders, one per preset (RUNS/<preset>).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="results", show_default=True,
              help="Where TABLE.md and TABLE.json are written.")
@click.option("--train-missing", is_flag=True, help="Train the preset of every row whose run folder does not exist.")
@click.option("--episodes", type=click.IntRange(min=2), default=1000, show_default=True, help="Fixed test episodes per row.")
@click.option("--fresh", is_flag=True, help="List rows whose run folder is missing as not run, instead of keeping "
              "them from the table already in --out.")
@data_root_option
def reproduce(table: str, runs_dir: str, out_dir: str, train_missing: bool, episodes: int, fresh: bool,
              data_root: str | None) -> None:
    """Score the runs of a paper TABLE on fixed episodes and write it (Markdown + JSON) beside the paper's figures."""
    earlier = {} if fresh else read_table(table, out_dir)
    results = run_table(table, runs_dir, train_missing=train_missing, episodes=episodes, data_root=data_root,
                        earlier=earlier)
    md, js = write_table(table, results, out_dir)
    click.echo(md.read_text())
    click.echo(f"wrote {md} and {js}")


@cli.command(name="export")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "path", type=click.Path(dir_okay=False), required=True, help="Model file to write, e.g. model.ltl.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@data_root_option
def export(run_dir: str, path: str, force: bool, data_root: str | None) -> None:
    """Write a run's best model as one self-describing file (weights, config, preprocessing) for `ltl adapt`."""
    written = export_model(run_dir, path, force=force, data_root=data_root)
    click.echo(f"wrote {written} ({written.stat().st_size / 1e6:.1f} MB)")


@cli.command()
@click.argument("model", type=click.Path(exists=True), required=False)
@click.option("--support", "support_path", type=click.Path(exists=True), required=True,
              help="Images: a folder with one sub-folder per class. Texts: a .csv (columns text,label) or .jsonl file.")
@click.option("--query", "query_path", type=click.Path(exists=True), required=True,
              help="A folder of images, or a file of texts (.txt one per line, .csv with a text column, .jsonl).")
@click.option("--out", "csv_path", type=click.Path(dir_okay=False), default="predictions.csv", show_default=True,
              help="CSV to write: file (or text), predicted_class, confidence.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--allow-fewer-shots", is_flag=True, help="Accept classes with fewer images than the model's shot setting.")
@click.option("--method", type=click.Choice(["logistic", "prototypes"]), default="logistic", show_default=True,
              help="Texts: logistic regression (confidence = probability) or cosine prototypes (confidence = similarity).")
@click.option("--shots", type=click.IntRange(min=1), default=None, help="Texts: require at least this many examples per class.")
@click.option("--reject-below", type=float, default=None,
              help="Texts: label a query out_of_scope when its confidence is below this.")
@data_root_option
def adapt(model: str | None, support_path: str, query_path: str, csv_path: str, force: bool, allow_fewer_shots: bool,
          method: str, shots: int | None, reject_below: float | None, data_root: str | None) -> None:
    """Label your queries from a few labelled examples per class.

    Images: adapt MODEL (an `ltl export` file or a run folder) to the class folders of --support.
    Texts (--support is a .csv or .jsonl file): no MODEL; the packaged sentence encoder embeds them.
    """
    out = Path(csv_path)
    if out.exists() and not force:
        raise FileExistsError(f"{out} already exists; pass --force to overwrite it or choose another --out")
    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if Path(support_path).is_file():
            if model is not None:
                raise click.UsageError("text examples (--support FILE) use the packaged sentence encoder; drop MODEL")
            from learntolearn.text import TextFewShotClassifier, read_texts

            classifier = TextFewShotClassifier(method, reject_below=reject_below).fit_file(support_path, shots=shots)
            texts, _ = read_texts(query_path, labelled=False)
            rows = [(p.text, p.predicted_class, p.confidence) for p in classifier.predict(texts)]
            header, what = ["text", "predicted_class", "confidence"], "texts"
        else:
            if model is None:
                raise click.UsageError("image folders need MODEL, an `ltl export` file or a run folder")
            classifier = FewShotClassifier.load(model, data_root)
            classifier.fit(support_path, allow_fewer_shots=allow_fewer_shots)
            rows = [(p.file, p.predicted_class, p.confidence) for p in classifier.predict(query_path)]
            header, what = ["file", "predicted_class", "confidence"], "images"
    for warning in caught:
        click.echo(f"note: {warning.message}", err=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows((name, label, f"{confidence:.4f}") for name, label, confidence in rows)
    tmp.replace(out)
    click.echo(f"{len(rows)} {what} labelled with {len(classifier.classes)} classes in "
               f"{time.perf_counter() - started:.1f} s; wrote {out}")


@cli.command()
@click.option("--out", "run_dir", type=click.Path(file_okay=False), default="ltl-demo", show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@data_root_option
@download_option
def demo(run_dir: str, steps: int, seed: int, data_root: str | None, download: bool) -> None:
    """Meta-train Prototypical Networks on Omniglot for a few minutes; print 5-way 1-shot test accuracy."""
    if Path(run_dir, "config.json").exists():
        raise FileExistsError(f"{run_dir} already holds a run; pass another --out or delete it")
    config = TrainConfig(algorithm="protonet", dataset="omniglot", split="vinyals", ways=5, shots=1, queries=15,
                         train_ways=20, train_queries=5, steps=steps, val_every=0, seed=seed)
    click.echo(f"Meta-training Prototypical Networks (conv4) on Omniglot, Vinyals split, 20-way 1-shot episodes, "
               f"{steps} steps; data root {resolve_data_root(data_root)}")
    started = time.time()
    result = Trainer(config, run_dir, data_root=data_root, download=download).run()
    click.echo(f"Omniglot 5-way 1-shot test accuracy: {result} in {time.time() - started:.0f} s; "
               f"run folder {run_dir}")


def main() -> None:
    cli(prog_name="ltl")


if __name__ == "__main__":
    main()
