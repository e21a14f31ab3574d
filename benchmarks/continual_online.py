"""The online phase of OML/ANML's protocol: single-image steps per second of the functional online learner
against a plain ``torch.optim.SGD`` loop on the same network and fast parameters, and meta-training steps per
second of OML and ANML at the presets' widths.

    python benchmarks/continual_online.py

Medians over interleaved rounds of 200 single-image steps. Appends a JSON line to
benchmarks/results/continual_online.jsonl.
"""

from __future__ import annotations

import statistics
import time

import torch
import torch.nn.functional as F
from record import append

from learntolearn.continual.runs import network, preset
from learntolearn.continual.stream import OnlineLearner
from learntolearn.continual.trajectory import remembering_loss

STEPS, ROUNDS = 200, 5


def main() -> None:
    torch.set_num_threads(1)
    net = network(preset("oml-omniglot"))
    images = torch.rand(STEPS, 1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    labels = torch.randint(0, 100, (STEPS, 1), generator=torch.Generator().manual_seed(1))

    def functional() -> None:
        learner = OnlineLearner(net.logits, net.params, net.meta_test_fast, 0.01)
        for x, y in zip(images, labels):
            learner.observe(x, y)

    def optimiser_loop() -> None:
        params = {n: v.clone().requires_grad_(n in net.meta_test_fast) for n, v in net.params.items()}
        sgd = torch.optim.SGD([params[n] for n in net.meta_test_fast], lr=0.01)
        for x, y in zip(images, labels):
            sgd.zero_grad()
            F.cross_entropy(net.logits(params, x), y).backward()
            sgd.step()

    times: dict[str, list[float]] = {"functional online learner": [], "torch.optim.SGD loop": []}
    for _ in range(ROUNDS + 1):
        for name, run in (("functional online learner", functional), ("torch.optim.SGD loop", optimiser_loop)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    online = {name: round(STEPS / statistics.median(values[1:]), 1) for name, values in times.items()}
    meta: dict[str, float] = {}
    for name in ("oml-omniglot", "anml-omniglot"):
        config = preset(name)
        model = network(config)
        params = {n: v.clone().requires_grad_(True) for n, v in model.params.items()}
        trajectory = (torch.rand(config.trajectory, 1, 28, 28), torch.full((config.trajectory,), 3))
        remember = (torch.rand(config.remember, 1, 28, 28), torch.randint(0, 100, (config.remember,)))
        seconds = []
        for _ in range(4):
            start = time.perf_counter()
            remembering_loss(model.logits, params, model.meta_training_fast, trajectory, remember, 0.03).backward()
            seconds.append(time.perf_counter() - start)
        meta[name] = round(1 / statistics.median(seconds[1:]), 2)
    append(
        "continual_online",
        {
            "setting": "presets' networks, 1 thread",
            "threads": 1,
            "online steps/s": online,
            "meta-training steps/s": meta,
        },
    )


if __name__ == "__main__":
    main()
