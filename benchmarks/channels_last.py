"""Forward+backward time of conv4 on NCHW (contiguous) against channels-last inputs and weights, in one run.

    python benchmarks/channels_last.py

400 images of 28x28 (a 20-way 5-shot 15-query episode), interleaved rounds, median per layout.
Appends a JSON line to benchmarks/results/channels_last.jsonl.
"""

from __future__ import annotations

import statistics
import time

import torch
from record import append
from torch import nn

from learntolearn.nn.backbones import conv4


def seconds(model: nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x).pow(2).sum().backward()
    return time.perf_counter() - start


def main() -> None:
    torch.manual_seed(0)
    x = torch.rand(400, 1, 28, 28)
    fast = conv4()
    plain = nn.Sequential(*conv4()).to(memory_format=torch.contiguous_format)
    plain.load_state_dict(fast.state_dict())
    for model in (fast, plain):
        seconds(model, x)
    times: dict[str, list[float]] = {"contiguous": [], "channels_last": []}
    for _ in range(7):
        times["contiguous"].append(seconds(plain, x))
        times["channels_last"].append(seconds(fast, x))
    medians = {k: statistics.median(v) for k, v in times.items()}
    with torch.no_grad():
        same = torch.allclose(plain(x), fast(x), atol=1e-4)
    append(
        "channels_last",
        {
            "setting": "conv4 forward+backward, 400 images 28x28",
            "contiguous_s": round(medians["contiguous"], 4),
            "channels_last_s": round(medians["channels_last"], 4),
            "speedup": round(medians["contiguous"] / medians["channels_last"], 2),
            "same_outputs": same,
        },
    )


if __name__ == "__main__":
    main()
