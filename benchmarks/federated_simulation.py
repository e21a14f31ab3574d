"""Flower's simulation engine against the same local computations in one plain loop: client updates per second,
the share of a round spent in the clients' own computation, and bytes per round.

    python benchmarks/federated_simulation.py --data-root ../shared/data

For each preset: ROUNDS rounds of 10 Omniglot clients in Flower's simulation (Ray, 1 and 2 client processes),
then the same clients' local updates and FedAvg's average in a plain Python loop (its clients' data loaded
beforehand). The simulation's rounds are timed from its checkpoints (the first round, which starts the actors,
is left out); the client processes' CPU time splits into reading a client's data the first time that process
serves it, and the local computation; the rest of a round's wall time is Ray's and Flower's messaging.
Appends a JSON line per preset and setting to benchmarks/results/federated_simulation.jsonl.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from record import append

from learntolearn.federated.app import simulate
from learntolearn.federated.local import local_update
from learntolearn.federated.runs import preset, training_client, training_tasks

ROUNDS = 8


def plain_loop(config, data_root: str | None) -> float:
    """Seconds per round of the same clients' updates and the average, in this process."""
    params = config.initial_params()
    clients = {p: training_client(config, p, data_root) for p in range(config.clients_per_round)}
    started = time.perf_counter()
    for round_ in range(1, ROUNDS + 1):
        if round_ == 2:  # the first round leaves out first-call costs, as the simulation's does
            started = time.perf_counter()
        updates = [
            local_update(config.algorithm, config.model(), params, training_tasks(config, c, p, round_), config.local)
            for p, c in clients.items()
        ]
        params = {n: torch.stack([u[n] for u in updates]).mean(0).detach() for n in params}
    return (time.perf_counter() - started) / (ROUNDS - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--presets", nargs="+", default=["fedmeta-protonet-omniglot", "fedavg-ft-omniglot"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    logging.getLogger("flwr").setLevel(logging.WARNING)
    os.environ.setdefault("RAY_DISABLE_USAGE_STATS", "1")
    for name in args.presets:
        config = replace(preset(name), rounds=ROUNDS, eval_every=10 * ROUNDS, eval_episodes=1)
        loop = plain_loop(config, args.data_root)
        for workers in (1, 2):
            stamps: list[float] = []
            with tempfile.TemporaryDirectory() as folder:
                state = simulate(
                    config,
                    Path(folder),
                    args.data_root,
                    workers=workers,
                    log=lambda _: stamps.append(time.perf_counter()),
                )
            per_round = (stamps[-2] - stamps[0]) / (len(stamps) - 2)  # rounds 2 .. ROUNDS-1 (the last one scores)
            history = state["history"][1:-1]
            client_cpu = sum(h["train"]["cpu-seconds"] for h in history) / len(history)
            data_cpu = sum(h["train"].get("data-cpu-seconds", 0.0) for h in history) / len(history)
            append(
                "federated_simulation",
                {
                    "setting": f"{name}, {workers} client process{'es' if workers > 1 else ''}",
                    "clients_per_round": config.clients_per_round,
                    "simulation_s_per_round": round(per_round, 3),
                    "plain_loop_s_per_round": round(loop, 3),
                    "client_updates_per_s": round(config.clients_per_round / per_round, 2),
                    "client_compute_share": round((client_cpu - data_cpu) / (per_round * workers), 3),
                    "client_data_loading_share": round(data_cpu / (per_round * workers), 3),
                    "bytes_per_round": history[-1]["bytes_down"] + history[-1]["bytes_up"],
                    "threads": 1,
                },
            )


if __name__ == "__main__":
    main()
