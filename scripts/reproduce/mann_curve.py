"""Per-instance accuracy of a trained memory-augmented network (Santoro et al. 2016, Table 1 / Figure 2).

    python scripts/reproduce/mann_curve.py RUN_DIR [--episodes 1000]

Scores the run's best checkpoint on fixed test episodes (5 classes x 10 instances, random order,
labels one step late), prints accuracy on the 1st, 2nd, 3rd, 5th and 10th appearance of a class,
and writes RUN_DIR/instance_accuracy.json and .png.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from learntolearn.algorithms.mann import instance_accuracy
from learntolearn.data import TEST_EPISODE_SEED, EpisodeSet, load_dataset
from learntolearn.engine.model_file import load_run
from learntolearn.engine.provenance import provenance
from learntolearn.experiments.plots import pyplot

PAPER = {1: 36.4, 2: 82.8, 3: 91.0, 5: 92.6, 10: 94.9}  # MANN, one-hot labels, Table 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--data-root", default=None)
    args = parser.parse_args()
    model = load_run(args.run, args.data_root)
    c = model.config.episodes
    data = load_dataset(c.dataset, c.split, c.test_subset, data_root=args.data_root, image_size=c.image_size)
    tasks = list(EpisodeSet.generate(data, c.ways, c.shots, c.queries, args.episodes, TEST_EPISODE_SEED).tasks(data))
    torch.manual_seed(TEST_EPISODE_SEED)
    accuracy = instance_accuracy(model.algorithm, tasks, instances=c.shots + c.queries)
    rows = {k: round(100 * float(accuracy[k - 1]), 1) for k in (1, 2, 3, 5, 10) if k <= len(accuracy)}
    print("| instance | " + " | ".join(map(str, rows)) + " |")
    print("|---" * (len(rows) + 1) + "|")
    print("| ours % | " + " | ".join(str(v) for v in rows.values()) + " |")
    print("| Santoro et al. % | " + " | ".join(str(PAPER.get(k, "")) for k in rows) + " |")
    (args.run / "instance_accuracy.json").write_text(
        json.dumps(
            {
                "instance_accuracy": accuracy.tolist(),
                "episodes": args.episodes,
                "checkpoint": model.source.name,
                **provenance(),
            },
            indent=2,
        )
    )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot(range(1, len(accuracy) + 1), 100 * accuracy, marker="o", label="learntolearn")
    ax.plot(list(PAPER), list(PAPER.values()), "s--", label="Santoro et al. 2016")
    ax.set(xlabel="instance of the class in the episode", ylabel="accuracy %", title="MANN, Omniglot 5 classes")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.run / "instance_accuracy.png", dpi=120)


if __name__ == "__main__":
    main()
