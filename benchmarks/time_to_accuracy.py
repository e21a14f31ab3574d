"""Test accuracy on the fixed test episodes against training CPU time on one thread.

    python benchmarks/time_to_accuracy.py --preset maml-omniglot-5w1s --run runs/tta-maml --data-root ../shared/data
    python benchmarks/time_to_accuracy.py --preset protonet-omniglot-5w1s --run runs/tta-protonet --data-root ../shared/data

Trains the preset as ``ltl train`` does, scoring the current model on the preset's 1,000 fixed test
episodes every ``--every`` steps in place of validation (so nothing is selected on them and no test
result is reported from this run). The clock is the trainer's CPU time in training steps (sampling,
meta-gradients, optimiser, and the compilers ``torch.compile`` runs), not the scoring. Training ends at the
first scoring after ``--cpu-minutes`` (default: the largest target's allowance) or at ``--steps``, whichever
comes first. ``--lr-halve-every`` fits the preset's step schedule to a shorter budget, ``--train-queries`` makes
training episodes cheaper, ``--meta-batch`` and ``--lr`` trade the preset's tasks per step and outer step size
for more steps per CPU-minute (each recorded with the curve).
Rerunning the command resumes the run folder from its last checkpoint; the curve is read from its metrics. Appends the
curve and the first CPU time at which each target accuracy was reached to
``benchmarks/results/time_to_accuracy.jsonl``.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch
from record import append

from learntolearn.engine.memory import reuse_freed_memory
from learntolearn.engine.metrics import read_metrics
from learntolearn.engine.sources import task_source
from learntolearn.engine.trainer import Trainer
from learntolearn.errors import StoppedError
from learntolearn.experiments.presets import get_preset

#: the issue's targets per preset: accuracy (%) -> CPU minutes allowed; steps between scorings; steps in all
TARGETS = {
    "maml-omniglot-5w1s": ({96.0: 10, 98.7: 120}, 500, 20_000),
    "protonet-omniglot-5w1s": ({98.8: 30}, 250, 6_000),
    # Snell et al.'s final protocol (train+val), under which their 98.8% was obtained
    "protonet-omniglot-5w1s-trainval": ({98.8: 30}, 250, 6_000),
}


def first_reached(curve: list[dict], accuracy: float) -> float | None:
    """CPU minutes at the first scoring whose mean test accuracy reaches ``accuracy`` (%)."""
    return next((round(p["cpu_minutes"], 1) for p in curve if p["test_accuracy"] >= accuracy), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", choices=sorted(TARGETS), default="maml-omniglot-5w1s")
    parser.add_argument("--every", type=int, default=None, help="Training steps between scorings.")
    parser.add_argument("--steps", type=int, default=None, help="Training steps at most.")
    parser.add_argument(
        "--cpu-minutes",
        type=float,
        default=None,
        help="Training CPU minutes, ending at the scoring after them (default: the largest target's).",
    )
    parser.add_argument(
        "--lr-halve-every",
        type=int,
        default=None,
        help="Steps between halvings of the outer lr (default: the preset's).",
    )
    parser.add_argument(
        "--train-queries",
        type=int,
        default=None,
        help="Query examples per class in training episodes (default: the preset's); test episodes keep theirs.",
    )
    parser.add_argument("--meta-batch", type=int, default=None, help="Tasks per training step (default: the preset's).")
    parser.add_argument("--lr", type=float, default=None, help="Outer learning rate (default: the preset's).")
    parser.add_argument("--run", type=Path, required=True, help="Run folder (resumed if it exists).")
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    reuse_freed_memory()  # as `ltl` does (LTL_REUSE_FREED_MEMORY=0: the C library's defaults)
    targets, every, steps = TARGETS[args.preset]
    preset = get_preset(args.preset).config
    run = dataclasses.replace(preset.run, steps=args.steps or steps, val_every=args.every or every, patience=0)
    if args.lr_halve_every:
        run = dataclasses.replace(run, lr_halve_every=args.lr_halve_every)
    if args.meta_batch:
        run = dataclasses.replace(run, meta_batch=args.meta_batch)
    if args.lr:
        run = dataclasses.replace(run, lr=args.lr)
    episodes = preset.episodes
    if args.train_queries:
        episodes = dataclasses.replace(episodes, train_queries=args.train_queries)
    config = dataclasses.replace(preset, run=run, episodes=episodes)
    source = task_source(config, data_root=args.data_root)
    scored_on_test = dataclasses.replace(source, validation=source.test, validation_count=source.test_count)
    trainer = Trainer(
        config, args.run, data_root=args.data_root, resume=(args.run / "config.json").exists(), source=scored_on_test
    )
    budget_minutes = args.cpu_minutes or max(targets.values())
    try:
        trainer.train(cpu_budget_seconds=60 * budget_minutes)
    except StoppedError:
        raise SystemExit(
            f"stopped at step {trainer.step} of {run.steps} with a checkpoint in {args.run}; rerun this command to "
            "resume (not `ltl train --resume`, which would score on validation episodes)"
        ) from None
    records = read_metrics(args.run)
    cpu = {r["step"]: r["train_cpu_seconds"] for r in records if "train_cpu_seconds" in r}
    curve = [
        {
            "step": r["step"],
            "cpu_minutes": round(cpu[r["step"]] / 60, 2),
            "test_accuracy": round(100 * r["val_accuracy"], 2),
        }
        | {"ci95": round(100 * r["val_ci95"], 2)}
        for r in records
        if "val_accuracy" in r
    ]
    append(
        "time_to_accuracy",
        {
            "setting": args.preset
            + (f", outer lr halved every {args.lr_halve_every:,} steps" if args.lr_halve_every else "")
            + (f", {args.train_queries} training queries per class" if args.train_queries else "")
            + (f", meta-batch {args.meta_batch}" if args.meta_batch else "")
            + (f", outer lr {args.lr:g}" if args.lr else ""),
            "threads": 1,
            "cpu_minutes_budget": budget_minutes,
            "test_episodes": source.test_count,
            "targets": {
                str(accuracy): {
                    "cpu_minutes_allowed": minutes,
                    "reached_after_cpu_minutes": first_reached(curve, accuracy),
                }
                for accuracy, minutes in targets.items()
            },
            "curve": curve,
        },
    )


if __name__ == "__main__":
    main()
