"""Compiled MAML's two overhead cuts, one at a time: tasks per graph and Inductor's C++ wrapper.

    python benchmarks/compiled_maml.py [--setting NAME ...] [--tasks-per-graph N ...]

Settings of ``benchmarks/maml_peers.py`` (5-way 1-shot, meta-batch 32, 28x28, one inner SGD step of
0.4, channels-last). ``compiled=True`` unrolls ``tasks_per_graph`` tasks into one graph, so Dynamo's
guards, AOTAutograd's wrappers and one autograd node come once per graph instead of once per task, at
the cost of a larger graph to compile; and it generates each graph's wrapper code (buffer allocation
and kernel calls) in C++ instead of Python. Each variant is timed from its first meta-iteration
(compilation included: "first_step_seconds", in a fresh Inductor cache directory, so the first variant
to need a kernel compiles it and later ones may reuse it), then by median meta-iterations per second over rounds
interleaved with the other variants on the same pre-drawn episodes. Appends JSON lines to
benchmarks/results/compiled_maml.jsonl.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from maml_peers import INNER_LR, SETTINGS, make_model, training_step
from record import append, interleaved_medians

from learntolearn.algorithms import MAML
from learntolearn.data import EpisodeSampler
from learntolearn.data.synthetic import load_synthetic
from learntolearn.engine.memory import reuse_freed_memory
from learntolearn.nn.compile import compile_method


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--setting", choices=list(SETTINGS), action="append", help="repeatable; default: paper, first order and paper"
    )
    parser.add_argument("--tasks-per-graph", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iterations", type=int, default=3, help="meta-iterations per variant per round")
    args = parser.parse_args()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="compiled_maml_")  # no graphs of earlier runs
    reuse_freed_memory()  # as `ltl` does (LTL_REUSE_FREED_MEMORY=0: the C library's defaults)
    glyphs = load_synthetic(subset="train", image_size=28)
    for name in args.setting or ["paper, first order", "paper"]:
        backbone, queries, first_order = SETTINGS[name]
        sampler = EpisodeSampler(glyphs, 5, 1, queries, seed=0)
        batches = [[sampler.sample() for _ in range(32)] for _ in range(args.iterations)]
        first_step_seconds: dict[str, float] = {}

        def build(variant: str, tasks_per_graph: int, cpp_wrapper: bool):
            def timed_first_step():
                maml = MAML(
                    make_model(backbone, "channels_last"),
                    inner_lr=INNER_LR,
                    first_order=first_order,
                    compiled=True,
                    tasks_per_graph=tasks_per_graph,
                )
                if not cpp_wrapper:
                    maml.execution.graphs = compile_method(maml.tasks_loss, cpp_wrapper=False)
                step = training_step(maml)
                start = time.perf_counter()
                step(batches[0])
                first_step_seconds[variant] = round(time.perf_counter() - start, 1)
                return step

            return timed_first_step

        variants = {
            f"{n} per graph, {'C++' if cpp else 'Python'} wrapper": (n, cpp)
            for n in args.tasks_per_graph
            for cpp in (False, True)
        }
        medians, _ = interleaved_medians(
            {v: build(v, *options) for v, options in variants.items()}, batches, args.rounds
        )
        baseline = medians.get("1 per graph, Python wrapper")
        append(
            "compiled_maml",
            {
                "setting": f"5-way 1-shot {queries}-query, meta-batch 32, {backbone} 28x28, 1 inner step, "
                f"{'first' if first_order else 'second'} order",
                "meta_iterations_per_s": {v: round(r, 3) for v, r in medians.items()},
                "first_step_seconds": first_step_seconds,
                "over_1_per_graph_python_wrapper": {v: round(r / baseline, 3) for v, r in medians.items()}
                if baseline
                else None,
            },
        )


if __name__ == "__main__":
    main()
