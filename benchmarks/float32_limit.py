"""Where a float32 training step's time goes, ours and a peer's, against this CPU's float32 matrix-multiply rate.

    python benchmarks/float32_limit.py

For the settings of the peer benchmarks (ProtoNets 20-way 5-shot 15-query; MAML 5-way 1-shot with 15
queries and with 1, meta-batch 32, one inner step, second and first order), one training step on one
thread of learntolearn's default path and of the peer it is compared with (plain PyTorch MAML, the
fastest peer in ``benchmarks/maml_peers.py`` or level with it; for ProtoNets our algorithm on the
published conv4, which runs at easyfsl's rate in ``benchmarks/protonet_peers.py``): each step's time,
the share spent in convolutions (forward, backward and, for second-order MAML, the backward of the
backward), the rate the convolutions reach (their floating-point operations counted by
``torch.utils.flop_counter``, their time by the profiler), and the rate of a 1024 x 1024 float32 matrix
product on the same core.

A step cannot run faster than its convolutions at the best rate either implementation reaches, so
``bound_over_peer`` (the peer's step time over that) is the largest speed-up over the peer that any
float32 implementation with these convolution kernels could show, with every other operator free.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from maml_peers import make_model, plain_pytorch
from protonet_peers import learntolearn_default, ours_step, papers_conv4
from record import append
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from learntolearn.algorithms import MAML
from learntolearn.data import EpisodeSampler
from learntolearn.data.synthetic import load_synthetic
from learntolearn.engine.memory import reuse_freed_memory
from learntolearn.engine.trainer import accumulate_meta_gradient

CONVOLUTIONS = ("aten::mkldnn_convolution", "aten::convolution_backward", "aten::_convolution_double_backward")
#: learntolearn's strided 3x3 convolutions (nn/strided_conv.py): timed with what they call (their C kernel runs
#: inside them, not as an operator of its own), so the autograd nodes around them are not "other" operators
KERNEL_CONVOLUTIONS = (
    "learntolearn::strided_conv",
    "learntolearn::strided_conv_input_grad",
    "learntolearn::strided_conv_weight_grad",
)
KERNEL_WRAPPERS = ("_Conv", "_InputGrad", "_WeightGrad")


def matmul_gflops(size: int = 1024, rounds: int = 7) -> float:
    a, b = torch.randn(size, size), torch.randn(size, size)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - started)
    return 2 * size**3 / statistics.median(times[1:]) / 1e9


def maml_steps(backbone: str, queries: int, first_order: bool) -> tuple[dict[str, Callable[[], None]], str]:
    glyphs = load_synthetic(subset="train", image_size=28)
    sampler = EpisodeSampler(glyphs, 5, 1, queries, seed=0)
    batch = [sampler.sample() for _ in range(32)]
    maml = MAML(make_model(backbone, "channels_last"), inner_lr=0.4, inner_steps=1, first_order=first_order)

    def ours() -> None:
        maml.zero_grad()
        accumulate_meta_gradient(maml, batch, len(batch))

    peer = plain_pytorch(backbone, first_order)
    order = "first" if first_order else "second"
    setting = f"MAML {order} order, 5-way 1-shot {queries}-query, meta-batch 32, {backbone} 28x28, 1 inner step"
    return {"learntolearn": ours, "plain PyTorch": lambda: peer(batch)}, setting


def protonet_steps() -> tuple[dict[str, Callable[[], None]], str]:
    glyphs = load_synthetic(subset="train", image_size=28)
    task = EpisodeSampler(glyphs, 20, 5, 15, seed=0).sample()
    ours, peer = learntolearn_default(), ours_step(papers_conv4())
    steps = {"learntolearn": lambda: ours(task), "published conv4 (easyfsl's rate)": lambda: peer(task)}
    return steps, "ProtoNets, 20-way 5-shot 15-query, conv4 28x28"


def examine(step: Callable[[], None]) -> dict:
    step()
    step()
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    flops = counter.get_flop_counts()["Global"]
    conv_flops = sum(n for op, n in flops.items() if "convolution" in str(op) or "strided_conv" in str(op))
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
    conv += sum(e.cpu_time_total for e in events if e.key in KERNEL_CONVOLUTIONS)
    counted = CONVOLUTIONS + KERNEL_CONVOLUTIONS + KERNEL_WRAPPERS
    others = sorted((e for e in events if e.key not in counted), key=lambda e: -e.self_cpu_time_total)[:4]
    step_seconds = statistics.median(seconds)
    return {
        "step_s": round(step_seconds, 4),
        "convolution_share": round(conv / total, 3),
        "convolution_gflops": round(conv_flops / (conv / total * step_seconds) / 1e9, 1),
        "convolution_gflop_per_step": round(conv_flops / 1e9, 2),
        "largest_other_ops": {e.key: round(e.self_cpu_time_total / total, 3) for e in others},
    }


def bound_over_peer(ours: dict, peer: dict) -> float:
    """The peer's step time over the time of the fewer convolution FLOPs at the faster convolution rate."""
    best_rate = max(ours["convolution_gflops"], peer["convolution_gflops"])
    fewest = min(ours["convolution_gflop_per_step"], peer["convolution_gflop_per_step"])
    return round(peer["step_s"] / (fewest / best_rate), 2)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()  # no options; --help says what it does
    torch.set_num_threads(1)
    reuse_freed_memory()
    rate = matmul_gflops()
    rows = {}
    settings = [
        protonet_steps,
        lambda: maml_steps("conv4", 15, False),
        lambda: maml_steps("conv4", 15, True),
        lambda: maml_steps("conv4-strided", 1, False),
        lambda: maml_steps("conv4-strided", 1, True),
    ]
    for build in settings:
        steps, setting = build()
        (ours_name, ours), (peer_name, peer) = steps.items()
        row = {ours_name: examine(ours), "peer": peer_name, peer_name: examine(peer)}
        row["bound_over_peer"] = bound_over_peer(row[ours_name], row[peer_name])
        rows[setting] = row
    append("float32_limit", {"setting": "training steps", "threads": 1, "matmul_gflops": round(rate, 1), "steps": rows})


if __name__ == "__main__":
    main()
