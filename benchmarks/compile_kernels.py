"""The two Inductor CPU kernels learntolearn.nn.compile routes around, and its per-instance compilation.

    python benchmarks/compile_kernels.py

* "ReLU": ``x.relu().sum()`` forward and backward on a 5x64x14x14 channels-last activation (one
  layer of MAML's strided conv4 on a 5-image set): eager, plain ``torch.compile`` (Inductor stores
  the ReLU mask as booleans) and ``compile_without_bool_masks``.
* "max-pooling": 2x2 max-pooling then ReLU, forward and backward, on 80x64x28x28 channels-last (the
  first block of the 15-query conv4): the same three.
* "instances": first-order MAML in its paper setting (strided conv4, 5-way 1-shot, 1 query,
  meta-batch 32) on the compiled task loop, timed on one of four compiled objects in the process,
  when the four share ``MAML.task_loss``'s Dynamo cache and when each compiles its own copy
  (``compile_method``, the default).

Median rates of interleaved rounds, one thread; appends JSON lines to benchmarks/results/compile_kernels.jsonl.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from maml_peers import make_model, training_step
from record import append, interleaved_medians

from learntolearn.algorithms import MAML
from learntolearn.data import EpisodeSampler
from learntolearn.data.synthetic import load_synthetic
from learntolearn.engine.memory import reuse_freed_memory
from learntolearn.nn.compile import compile_without_bool_masks


def backward_of(fn):
    def step(x):
        fn(x).backward()

    return step


def kernel_settings() -> dict:
    relu = lambda x: x.relu().sum()
    pool = lambda x: F.max_pool2d(x, 2).relu().sum()
    channels_last = torch.channels_last
    return {
        "ReLU forward+backward, 5x64x14x14": (relu, torch.randn(5, 64, 14, 14).to(memory_format=channels_last)),
        "max-pooling 2x2 + ReLU forward+backward, 80x64x28x28": (
            pool,
            torch.randn(80, 64, 28, 28).to(memory_format=channels_last),
        ),
    }


def shared_or_private(share: bool):
    """Four compiled first-order MAML objects; the step trains the first."""
    objects = [
        MAML(make_model("conv4-strided", "channels_last"), inner_lr=0.4, first_order=True, compiled=True)
        for _ in range(4)
    ]
    if share:
        for maml in objects:
            maml._compiled_task_loss = compile_without_bool_masks(maml.task_loss)
    steps = [training_step(maml) for maml in objects]

    def step(batch):
        if not hasattr(step, "warm"):
            for other in steps[1:]:
                other(batch)
            step.warm = True
        steps[0](batch)

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    reuse_freed_memory()
    torch.set_num_threads(1)
    for setting, (fn, x) in kernel_settings().items():
        x.requires_grad_()
        implementations = {
            "eager": lambda fn=fn: backward_of(fn),
            "torch.compile (Inductor)": lambda fn=fn: backward_of(torch.compile(fn)),
            "compile_without_bool_masks": lambda fn=fn: backward_of(compile_without_bool_masks(fn)),
        }
        rates, _ = interleaved_medians(implementations, [x] * 20, args.rounds)
        append(
            "compile_kernels",
            {
                "setting": setting,
                "calls_per_s": {n: round(v, 1) for n, v in rates.items()},
                "inductor_over_eager": round(rates["torch.compile (Inductor)"] / rates["eager"], 2),
                "ours_over_eager": round(rates["compile_without_bool_masks"] / rates["eager"], 2),
            },
        )
    sampler = EpisodeSampler(load_synthetic(subset="train", image_size=28), 5, 1, 1, seed=0)
    batches = [[sampler.sample() for _ in range(32)] for _ in range(3)]
    rates, _ = interleaved_medians(
        {
            "shared cache": lambda: shared_or_private(True),
            "own copy (compile_method)": lambda: shared_or_private(False),
        },
        batches,
        args.rounds,
    )
    append(
        "compile_kernels",
        {
            "setting": "first-order MAML, paper setting, one of four compiled objects",
            "meta_iterations_per_s": {n: round(v, 3) for n, v in rates.items()},
            "own_over_shared": round(rates["own copy (compile_method)"] / rates["shared cache"], 2),
        },
    )


if __name__ == "__main__":
    main()
