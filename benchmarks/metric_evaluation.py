"""Seconds to evaluate 1,000 fixed test episodes with each metric-based algorithm (target: well under a minute).

    python benchmarks/metric_evaluation.py --data-root ../shared/data

5-way 1-shot, 15 queries, Omniglot Vinyals test split at 28x28 (generated glyphs without a data
root), untrained networks (speed does not depend on the weights), the evaluator users run
(``evaluate``: adapt and predict per episode under inference mode).
"""

from __future__ import annotations

import argparse
import time

from record import append

from learntolearn.data import EpisodeSet, load_dataset
from learntolearn.engine.build import build_algorithm
from learntolearn.engine.config import TrainConfig
from learntolearn.engine.evaluate import evaluate

SETTINGS = {
    "protonet": {},
    "matching": {"distance": "scaled-cosine"},
    "relation": {"backbone": "conv4-maps"},
    "siamese": {},
    "recurrent": {"sequence_model": "transformer"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--episodes", type=int, default=1000)
    args = parser.parse_args()
    if args.data_root:
        data, source = load_dataset("omniglot", "vinyals", "test", data_root=args.data_root, download=False), "Omniglot"
    else:
        data, source = load_dataset("synthetic", "default", "test", image_size=28), "generated glyphs"
    episodes = EpisodeSet.generate(data, 5, 1, 15, args.episodes, seed=2)
    seconds = {}
    for name, options in SETTINGS.items():
        model = build_algorithm(TrainConfig.create(algorithm=name, **options), data.image_shape, 1)
        started = time.perf_counter()
        evaluate(model, episodes.tasks(data), progress=False)
        seconds[name] = round(time.perf_counter() - started, 1)
    append(
        "metric_evaluation",
        {"setting": f"{args.episodes} fixed 5-way 1-shot 15-query episodes, conv4 28x28, {source}", "seconds": seconds},
    )


if __name__ == "__main__":
    main()
