"""Training throughput with 1 and 2 processes on one machine (``ltl train --nproc``), MAML and ProtoNets.

    python benchmarks/distributed_scaling.py --data-root ../shared/data [--steps 40 --rounds 2]

Each configuration is a real ``ltl train`` run on Omniglot (Vinyals split) in its own process tree:
one process with one thread, one process with every core's threads, and one process per core with
one thread each (data-parallel, gradients all-reduced over gloo). The rate is meta-training tasks per
second between the first ``warmup`` steps and the last step, read from the run's ``metrics.jsonl``;
configurations alternate round by round so machine noise hits them alike.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from record import append

SETTINGS = {
    "maml 5w1s, meta-batch 32": ["--preset", "maml-omniglot-5w1s"],
    "protonet 20w5s15q, meta-batch 4": [
        "--algorithm",
        "protonet",
        "--backbone",
        "conv4",
        "--ways",
        "20",
        "--shots",
        "5",
        "--queries",
        "15",
        "--meta-batch",
        "4",
        "--image-size",
        "28",
    ],
}


def tasks_per_second(args: list[str], nproc: int, threads: int, steps: int, warmup: int, data_root: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        command = [
            sys.executable,
            "-m",
            "learntolearn.cli.main",
            "train",
            *args,
            "--steps",
            str(steps),
            "--val-every",
            "0",
            "--test-episodes",
            "2",
            "--checkpoint-every",
            str(steps),
            "--nproc",
            str(nproc),
            "--data-root",
            data_root,
            "--no-download",
            "--out",
            str(run),
        ]
        subprocess.run(
            command,
            env={**os.environ, "OMP_NUM_THREADS": str(threads)},
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        meta_batch = json.loads((run / "config.json").read_text())["meta_batch"]
    seconds = {row["step"]: row["train_seconds"] for row in rows if "train_seconds" in row}
    return (steps - warmup) * meta_batch / (seconds[steps] - seconds[warmup])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", default=os.environ.get("LTL_DATA", "../shared/data"))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    configurations = {
        "1 process x 1 thread": (1, 1),
        f"1 process x {cores} threads": (1, cores),
        f"{cores} processes x 1 thread": (cores, 1),
    }
    for setting, setting_args in SETTINGS.items():
        rates: dict[str, list[float]] = {name: [] for name in configurations}
        for _ in range(args.rounds):
            for name, (nproc, threads) in configurations.items():
                rates[name].append(
                    tasks_per_second(setting_args, nproc, threads, args.steps, args.warmup, args.data_root)
                )
        medians = {name: round(statistics.median(r), 2) for name, r in rates.items()}
        baseline = medians["1 process x 1 thread"]
        append(
            "distributed_scaling",
            {
                "setting": setting,
                "steps": args.steps,
                "warmup": args.warmup,
                "rounds": args.rounds,
                "tasks_per_second": medians,
                "speedup_vs_1x1": {k: round(v / baseline, 2) for k, v in medians.items()},
            },
        )


if __name__ == "__main__":
    main()
