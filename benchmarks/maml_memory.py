"""Peak memory of one second-order MAML meta-iteration with 5 inner steps: learntolearn's options and the peers.

    pip install higher torchopt        # optional, benchmark-only
    python benchmarks/maml_memory.py

Setting of the issue: 5-way 1-shot, 15 queries per class, meta-batch 32, conv4 + linear head,
28x28 inputs, 5 inner SGD steps of 0.4. Each configuration runs in its own processes: the figure is
the growth of the process's peak resident memory (``ru_maxrss``) over one meta-iteration after the
model and episodes are built ("cold"), and over one meta-iteration after a warm-up iteration on one
1-query task ("warm": one-time costs such as kernel caches and lazily loaded code excluded, the graph's
peak included), the median of five processes each. learntolearn's default backpropagates the meta-batch
in chunks of as many tasks as keep the saved graph within 128 MB (``graph_memory_mb``); "whole meta-batch"
builds all 32 tasks' graphs at once and ``--tasks-per-backward 1`` goes task by task, as the higher and
torchopt examples do, for the same gradient; first-order MAML keeps no second-order graph.
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F
from maml_peers import make_model
from record import append

from learntolearn.algorithms import MAML
from learntolearn.data import EpisodeSampler
from learntolearn.data.synthetic import load_synthetic
from learntolearn.engine.trainer import MetaBatchChunks, accumulate_meta_gradient

INNER_LR, INNER_STEPS = 0.4, 5
#: processes per configuration and mode; the figure is their median (peaks vary by 15-30 MB run to run)
REPEATS = 5


def ours(tasks_per_backward: int = 0, graph_memory_mb: int = 128, first_order: bool = False):
    maml = MAML(
        make_model("conv4", "channels_last"), inner_lr=INNER_LR, inner_steps=INNER_STEPS, first_order=first_order
    )
    chunks = MetaBatchChunks(tasks_per_backward, graph_memory_mb)

    def step(batch):
        maml.zero_grad()
        accumulate_meta_gradient(maml, batch, chunks)

    return step


def higher_maml():
    import higher

    model = make_model("conv4")
    inner = torch.optim.SGD(model.parameters(), lr=INNER_LR)

    def step(batch):
        model.zero_grad()
        for t in batch:
            with higher.innerloop_ctx(model, inner, copy_initial_weights=False) as (fmodel, diffopt):
                for _ in range(INNER_STEPS):
                    diffopt.step(F.cross_entropy(fmodel(t.support_x), t.support_y))
                (F.cross_entropy(fmodel(t.query_x), t.query_y) / len(batch)).backward()

    return step


def torchopt_maml():
    import torchopt

    model = make_model("conv4")
    inner = torchopt.MetaSGD(model, lr=INNER_LR)

    def step(batch):
        model.zero_grad()
        state = torchopt.extract_state_dict(model)
        for t in batch:
            for _ in range(INNER_STEPS):
                inner.step(F.cross_entropy(model(t.support_x), t.support_y))
            (F.cross_entropy(model(t.query_x), t.query_y) / len(batch)).backward()
            torchopt.recover_state_dict(model, state)

    return step


CONFIGS = {
    "learntolearn (default: 128 MB graph budget)": lambda: ours(),
    "learntolearn, whole meta-batch": lambda: ours(graph_memory_mb=0),
    "learntolearn, --tasks-per-backward 1": lambda: ours(tasks_per_backward=1),
    "learntolearn, first order (default)": lambda: ours(first_order=True),
    "learntolearn, first order, whole meta-batch": lambda: ours(graph_memory_mb=0, first_order=True),
    "higher": higher_maml,
    "torchopt": torchopt_maml,
}


def measure(name: str, warm: bool) -> None:
    """Child process: print the peak-RSS growth (MB) of one meta-iteration of configuration ``name``."""
    glyphs = load_synthetic(subset="train", image_size=28)
    sampler = EpisodeSampler(glyphs, 5, 1, 15, seed=0)
    batch = [sampler.sample() for _ in range(32)]
    try:
        step = CONFIGS[name]()
    except ImportError as err:
        print(json.dumps({"missing": f"not installed ({err})"}))
        return
    if warm:
        step([EpisodeSampler(glyphs, 5, 1, 1, seed=1).sample()])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step(batch)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": round((after - before) / 1024, 1)}))


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        measure(sys.argv[2], sys.argv[3] == "warm")
        return
    peaks: dict[str, dict[str, float]] = {}
    missing = {}
    for name in CONFIGS:
        for when in ("cold", "warm"):
            runs = []
            for _ in range(REPEATS):
                command = [sys.executable, __file__, "--measure", name, when]
                out = subprocess.run(command, capture_output=True, text=True, check=True)
                result = json.loads(out.stdout.strip().splitlines()[-1])
                if "missing" in result:
                    missing[name] = result["missing"]
                    break
                runs.append(result["peak_mb"])
            if runs:
                peaks.setdefault(name, {})[when] = statistics.median(runs)
    append(
        "maml_memory",
        {
            "setting": "second-order MAML, 5 inner steps, 5-way 1-shot 15-query, meta-batch 32, conv4 28x28",
            "peak_growth_mb": {name: value["cold"] for name, value in peaks.items()},
            "warm_peak_growth_mb": {name: value["warm"] for name, value in peaks.items()},
            "missing": missing,
        },
    )


if __name__ == "__main__":
    main()
