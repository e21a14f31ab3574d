"""Meta-iterations per second of MAML's task loop against its vmapped path, side by side in one run.

    python benchmarks/maml_paths.py

Settings: MAML's sinusoid MLP (40-40, K=10, meta-batch 25) and 5-way 1-shot image episodes
(28x28, meta-batch 32) with MAML's strided conv4 (1 query per class, the paper's Omniglot setting)
and with the max-pooling conv4 (15 queries per class); one inner step, second order. Episodes
come from the generated glyph set, so the timing does not depend on a data root. Freed buffers are
reused as under ``ltl`` (:mod:`learntolearn.engine.memory`). Appends JSON lines to
benchmarks/results/maml_paths.jsonl.
"""

from __future__ import annotations

import argparse
import time

import torch
from record import append
from torch import nn

from learntolearn.algorithms import MAML
from learntolearn.data import EpisodeSampler
from learntolearn.data.sinusoid import SinusoidTasks
from learntolearn.data.synthetic import load_synthetic
from learntolearn.engine.memory import reuse_freed_memory
from learntolearn.nn.backbones import conv4, conv4_strided, mlp


def settings():
    glyphs = load_synthetic(subset="train", image_size=28)
    yield "sinusoid MLP 40-40, K=10, meta-batch 25", lambda: mlp(1, (40, 40), 1), "mse", SinusoidTasks(10, 10), 25
    yield (
        "strided conv4, 5-way 1-shot 1-query, meta-batch 32",
        lambda: nn.Sequential(conv4_strided(), nn.Linear(64, 5)),
        "cross_entropy",
        EpisodeSampler(glyphs, 5, 1, 1),
        32,
    )
    yield (
        "conv4, 5-way 1-shot 15-query, meta-batch 32",
        lambda: nn.Sequential(conv4(), nn.Linear(64, 5)),
        "cross_entropy",
        EpisodeSampler(glyphs, 5, 1, 15),
        32,
    )


def iterations_per_second(make_model, loss, source, meta_batch, batched, seconds):
    torch.manual_seed(0)
    maml = MAML(make_model(), inner_lr=0.01 if loss == "mse" else 0.4, loss=loss, batched=batched)
    optimizer = torch.optim.Adam(maml.parameters(), lr=1e-3)

    def step():
        out = maml.meta_loss([source.sample() for _ in range(meta_batch)])
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()

    step()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or count < 3:
        step()
        count += 1
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="time per measurement")
    args = parser.parse_args()
    reuse_freed_memory()  # as `ltl` does (LTL_REUSE_FREED_MEMORY=0: the C library's defaults)
    for name, make_model, loss, source, meta_batch in settings():
        loop = iterations_per_second(make_model, loss, source, meta_batch, False, args.seconds)
        vmapped = iterations_per_second(make_model, loss, source, meta_batch, True, args.seconds)
        append(
            "maml_paths",
            {
                "setting": name,
                "loop_iterations_per_s": round(loop, 3),
                "vmapped_iterations_per_s": round(vmapped, 3),
                "vmapped_over_loop": round(vmapped / loop, 2),
            },
        )


if __name__ == "__main__":
    main()
