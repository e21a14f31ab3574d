"""Episodes per second of the in-memory sampler, against a per-image Python loop, in one run.

    python benchmarks/episode_sampling.py --data-root ../shared/data

Both samplers draw the same kind of Omniglot (Vinyals train, 28x28, rotations) episode; the
per-image baseline indexes one image at a time and stacks, like a map-style Dataset would.
Appends one JSON line per setting to benchmarks/results/episode_sampling.jsonl.
"""

from __future__ import annotations

import argparse
import time

import torch
from record import append

from learntolearn.data import EpisodeSampler, load_omniglot

SETTINGS = [(5, 1, 15), (20, 5, 15)]


def per_image_episode(data, ways, shots, queries, generator):
    classes = torch.randperm(data.n_classes, generator=generator)[:ways].tolist()
    support, query = [], []
    for c in classes:
        start, count = int(data.offsets[c]), int(data.counts[c])
        picks = torch.randperm(count, generator=generator)[: shots + queries].tolist()
        images = [data.images[start + i].float() / 255 for i in picks]
        support += images[:shots]
        query += images[shots:]
    return torch.stack(support), torch.stack(query)


def rate(fn, seconds: float) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    args = parser.parse_args()
    data = load_omniglot("vinyals", "train", data_root=args.data_root)
    for ways, shots, queries in SETTINGS:
        sampler = EpisodeSampler(data, ways, shots, queries, seed=0)
        generator = torch.Generator().manual_seed(0)
        ours = rate(sampler.sample, args.seconds)
        loop = rate(lambda: per_image_episode(data, ways, shots, queries, generator), args.seconds)
        append(
            "episode_sampling",
            {
                "setting": f"{ways}-way {shots}-shot {queries}-query",
                "episodes_per_s": round(ours, 1),
                "per_image_loop_episodes_per_s": round(loop, 1),
                "speedup": round(ours / loop, 1),
            },
        )


if __name__ == "__main__":
    main()
