"""Where a float32 training step's time goes, against this CPU's float32 matrix-multiply rate.

    python benchmarks/float32_limit.py

For the settings of the peer benchmarks (ProtoNets 20-way 5-shot 15-query; second-order MAML 5-way 1-shot
with 15 queries and with 1, meta-batch 32, one inner step), one training step of learntolearn's default
path on one thread: its time, the share spent in convolutions (forward, backward and, for MAML, the
backward of the backward), the rate the convolutions reach (their floating-point operations counted by
``torch.utils.flop_counter``, their time by the profiler), and the rate of a 1024 x 1024 float32 matrix
product on the same core. The step cannot run faster than its convolutions at the rate they reach, so
``1 / share`` bounds the speed-up left from everything else; the matrix-product rate bounds what faster
convolutions could give.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from maml_peers import make_model
from protonet_peers import learntolearn_default
from record import append
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from learntolearn.algorithms import MAML
from learntolearn.data import EpisodeSampler
from learntolearn.data.synthetic import load_synthetic
from learntolearn.engine.memory import reuse_freed_memory
from learntolearn.engine.trainer import accumulate_meta_gradient

CONVOLUTIONS = ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution_double_backward")


def matmul_gflops(size: int = 1024, rounds: int = 7) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(times[1:]) / 1e9


def maml_step(backbone: str, queries: int) -> tuple[Callable[[], None], str]:
    glyphs = load_synthetic(subset="train", image_size=28)
    sampler = EpisodeSampler(glyphs, 5, 1, queries, seed=0)
    batch = [sampler.sample() for _ in range(32)]
    maml = MAML(make_model(backbone, "channels_last"), inner_lr=0.4, inner_steps=1)

    def step() -> None:
        maml.zero_grad()
        accumulate_meta_gradient(maml, batch, len(batch))

    return step, f"MAML second order, 5-way 1-shot {queries}-query, meta-batch 32, {backbone} 28x28, 1 inner step"


def protonet_step() -> tuple[Callable[[], None], str]:
    glyphs = load_synthetic(subset="train", image_size=28)
    task = EpisodeSampler(glyphs, 20, 5, 15, seed=0).sample()
    step = learntolearn_default()
    return lambda: step(task), "ProtoNets, 20-way 5-shot 15-query, conv4 28x28"


def examine(step: Callable[[], None]) -> dict:
    step()
    step()
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_flop_counts()["Global"]
    conv_flops = sum(n for op, n in flops.items() if "convolution" in str(op))
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        step()
        seconds.append(time.perf_counter() - started)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if e.key in CONVOLUTIONS)
    others = sorted((e for e in events if e.key not in CONVOLUTIONS), key=lambda e: -e.self_cpu_time_total)[:4]
    step_seconds = statistics.median(seconds)
    return {
        "step_s": round(step_seconds, 4),
        "convolution_share": round(conv / total, 3),
        "convolution_gflops": round(conv_flops / (conv / total * step_seconds) / 1e9, 1),
        "convolution_gflop_per_step": round(conv_flops / 1e9, 2),
        "largest_other_ops": {e.key: round(e.self_cpu_time_total / total, 3) for e in others},
    }


def main() -> None:
    torch.set_num_threads(1)
    reuse_freed_memory()
    rate = matmul_gflops()
    rows = {}
    for build in (protonet_step, lambda: maml_step("conv4", 15), lambda: maml_step("conv4-strided", 1)):
        step, setting = build()
        rows[setting] = examine(step)
    append("float32_limit", {"setting": "training steps", "threads": 1, "matmul_gflops": round(rate, 1), "steps": rows})


if __name__ == "__main__":
    main()
