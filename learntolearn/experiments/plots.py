"""Figures written next to a run: learning curves, and accuracy versus shots of the trained model.

matplotlib is an optional extra (``pip install 'learntolearn[plot]'``); it is imported only here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from learntolearn.data import TEST_EPISODE_SEED, EpisodeSet, load_dataset
from learntolearn.engine.config import TrainConfig
from learntolearn.engine.evaluate import confidence_interval, evaluate
from learntolearn.engine.metrics import read_metrics
from learntolearn.engine.model_file import load_run
from learntolearn.errors import LtlError
from learntolearn.files import write_json


def pyplot():
    try:
        import matplotlib
    except ImportError as err:
        raise ImportError("plots need matplotlib: pip install 'learntolearn[plot]'") from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def moving_average(values: list[float], window: int) -> list[float]:
    """Trailing mean over up to ``window`` values (shorter at the start)."""
    out, total = [], 0.0
    for i, value in enumerate(values):
        total += value - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def plot_learning_curves(run_dir: str | Path) -> Path:
    """``learning_curves.png``: smoothed training loss and accuracy, and validation accuracy with its 95% CI."""
    run = Path(run_dir)
    records = read_metrics(run)
    train = [r for r in records if "loss" in r]
    val = [r for r in records if "val_accuracy" in r]
    if not train:
        raise LtlError(f"{run}/metrics.jsonl has no training steps yet; nothing to plot")
    window = max(1, len(train) // 50)
    plt = pyplot()
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    steps = [r["step"] for r in train]
    ax_loss.plot(steps, moving_average([r["loss"] for r in train], window))
    ax_loss.set(xlabel="meta-training step", ylabel=f"training loss (mean of {window} steps)", yscale="log")
    episodes = TrainConfig.from_dict(json.loads((run / "config.json").read_text())).episodes
    ax_acc.plot(
        steps, moving_average([r["accuracy"] for r in train], window), label=f"training ({episodes.training_ways}-way)"
    )
    if val:
        means = [r["val_accuracy"] for r in val]
        ci = [r["val_ci95"] for r in val]
        ax_acc.errorbar(
            [r["step"] for r in val],
            means,
            yerr=ci,
            marker="o",
            capsize=3,
            label=f"validation ({episodes.ways}-way, 95% CI)",
        )
    ax_acc.set(xlabel="meta-training step", ylabel="accuracy")
    ax_acc.legend()
    fig.suptitle(run.name)
    fig.tight_layout()
    path = run / "learning_curves.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_accuracy_vs_shots(
    run_dir: str | Path, shots: list[int], *, queries: int = 5, episodes: int = 200, data_root: str | None = None
) -> Path:
    """``accuracy_vs_shots.png`` (and ``.json``): the trained model on fixed test episodes with K = ``shots``."""
    run = Path(run_dir)
    model = load_run(run, data_root)
    c = model.config.episodes
    data = load_dataset(c.dataset, c.split, c.test_subset, data_root=data_root, image_size=c.image_size, download=False)
    points = []
    for k in shots:
        episode_set = EpisodeSet.generate(data, c.ways, k, queries, episodes, TEST_EPISODE_SEED)
        result = evaluate(
            model.algorithm, episode_set.tasks(data), total=len(episode_set), description=f"{k}-shot episodes"
        )
        points.append(
            {
                "shots": k,
                "accuracy": result.mean,
                "ci95": result.ci95,
                "ways": c.ways,
                "queries": queries,
                "episodes": episodes,
                "episode_seed": TEST_EPISODE_SEED,
                "checkpoint": model.source.name,
            }
        )
    write_json(run / "accuracy_vs_shots.json", points)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.errorbar(shots, [p["accuracy"] for p in points], yerr=[p["ci95"] for p in points], marker="o", capsize=3)
    ax.axvline(c.shots, color="grey", linestyle=":", label=f"trained with {c.shots} shot(s)")
    ax.set(xscale="log", xlabel="shots per class (K)", ylabel=f"{c.ways}-way test accuracy")
    ax.set_title(f"{run.name}\n{episodes} fixed test episodes per point, 95% CI", fontsize=10)
    ax.set_xticks(shots, [str(k) for k in shots])
    ax.legend()
    fig.tight_layout()
    path = run / "accuracy_vs_shots.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_continual_curves(curves: dict[str, dict[str, Any]], path: Path) -> Path:
    """Memorisation and generalisation accuracy against the number of classes learnt, one line per learner
    (``curves[learner][str(C)][accuracy]`` lists one value per class order), with 95% intervals over orders."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), sharey=True)
    for ax, key in zip(axes, ("memorisation", "generalisation")):
        for learner, per_count in curves.items():
            counts = [int(c) for c in per_count]
            values = [torch.tensor(per_count[str(c)][key]) * 100 for c in counts]
            ci = [confidence_interval(v) for v in values]
            ax.errorbar(counts, [float(v.mean()) for v in values], yerr=ci, marker="o", capsize=3, label=learner)
        ax.set(title=key, xlabel="classes learnt in sequence", xscale="log", ylim=(0, 100))
        ax.set_xticks(counts, [str(c) for c in counts])
        ax.minorticks_off()
    axes[0].set_ylabel("accuracy (%)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize="small")
    fig.tight_layout(rect=(0, 0.06 * ((len(labels) + 2) // 3), 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_rl_history(run: Path, path: Path | None = None) -> Path:
    """The training curve of an RL run into ``path`` (default ``run/training_curve.png``), per iteration: for
    MAML-RL the meta-batch's average return before and after adapting (TRPO iterations), for RL² the mean total
    reward per trial of the iteration's tasks (PPO)."""
    from learntolearn.files import load_tensors

    state = load_tensors(run / "checkpoint.pt", "RL checkpoint")
    history = state.get("history")
    if not history:
        raise LtlError(f"{run} holds no training history to plot (runs before history was kept have none)")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    iterations = range(1, len(history) + 1)
    window = max(1, len(history) // 50)
    if state.get("algorithm") == "maml-rl":
        ax.plot(iterations, moving_average([h[0] for h in history], window), label="before adapting")
        ax.plot(iterations, moving_average([h[1] for h in history], window), label="after one step")
        ax.set(xlabel="TRPO iteration", ylabel=f"average return (mean of {window} iterations)")
        ax.legend()
    else:
        ax.plot(iterations, moving_average(list(history), window))
        ax.set(xlabel="PPO iteration", ylabel=f"total reward per trial (mean of {window} iterations)")
    fig.tight_layout()
    path = path or run / "training_curve.png"
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
