"""Episode sampling for meta-RL: the batched tensor simulator against gymnasium's SyncVectorEnv and
AsyncVectorEnv on the same navigation tasks and policy, HalfCheetah through both vector environments, and the
share of a MAML-RL meta-iteration (navigation, and HalfCheetah at the preset's size) spent simulating, adapting and
in TRPO.

    python benchmarks/rl_simulators.py

Environment steps per second count every copy's steps, policy included (the MLP 100-100 of the presets).
Rates are medians over interleaved rounds. Appends a JSON line to benchmarks/results/rl_simulators.jsonl.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from record import append

from learntolearn.rl.gym_tasks import VectorTasks, cheetah_directions, point_navigation
from learntolearn.rl.maml_rl import (
    MAMLRLSettings,
    Simulator,
    adapt,
    init_policy,
    meta_objective,
    normalised_advantages,
    sample_episodes,
    trpo_step,
)
from learntolearn.rl.tasks import PointNavigation

ROUNDS = 5


def median_seconds(runs: dict[str, Callable[[], object]], rounds: int = ROUNDS) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm-up
    for _ in range(rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def navigation_rates(tasks: int, episodes: int, asynchronous: bool) -> dict[str, float]:
    params = init_policy(2, 2, (100, 100), torch.Generator().manual_seed(0))
    goals = PointNavigation().sample(tasks, torch.Generator().manual_seed(1)).float()
    generator = torch.Generator().manual_seed(2)
    vectors = {"gymnasium SyncVectorEnv": VectorTasks(point_navigation(), tasks, episodes)}
    if asynchronous:
        vectors["gymnasium AsyncVectorEnv"] = VectorTasks(point_navigation(), tasks, episodes, asynchronous=True)
    runs: dict[str, Callable[[], object]] = {
        "tensor simulator": lambda: sample_episodes(params, PointNavigation(), goals, episodes, generator)
    }
    for name, simulator in vectors.items():
        runs[name] = lambda simulator=simulator: sample_episodes(params, simulator, goals, episodes, generator)
    try:
        seconds = median_seconds(runs)
    finally:
        for simulator in vectors.values():
            simulator.close()
    steps = tasks * episodes * PointNavigation().horizon
    return {name: round(steps / value) for name, value in seconds.items()}


def cheetah_rates(copies: int, horizon: int = 200) -> dict[str, float]:
    params = init_policy(17, 6, (100, 100), torch.Generator().manual_seed(0))
    sampler = cheetah_directions(horizon)
    goals = sampler.sample(copies, torch.Generator().manual_seed(1))
    generator = torch.Generator().manual_seed(2)
    sync, asynchronous = VectorTasks(sampler, copies, 1), VectorTasks(sampler, copies, 1, asynchronous=True)
    try:
        seconds = median_seconds(
            {
                "gymnasium SyncVectorEnv": lambda: sample_episodes(params, sync, goals, 1, generator),
                "gymnasium AsyncVectorEnv": lambda: sample_episodes(params, asynchronous, goals, 1, generator),
            },
            rounds=3,
        )
    finally:
        sync.close()
        asynchronous.close()
    return {name: round(copies * horizon / value) for name, value in seconds.items()}


def meta_iteration_shares(
    env: Simulator, goals: Callable[[torch.Generator], torch.Tensor], sizes: tuple[int, int], tasks: int, rounds: int
) -> dict[str, float]:
    """Seconds per part of one meta-iteration of ``tasks`` tasks x 20 episodes (a preset's size), median of
    ``rounds`` after one warm-up."""
    config = MAMLRLSettings()
    params = init_policy(*sizes, (100, 100), torch.Generator().manual_seed(0))
    for value in params.values():
        value.requires_grad_(True)
    generator = torch.Generator().manual_seed(1)
    parts: dict[str, list[float]] = {"simulating (both samples)": [], "advantages and adaptation": [], "TRPO": []}
    for _ in range(rounds + 1):
        batch = goals(generator)
        start = time.perf_counter()
        train = sample_episodes(params, env, batch, 20, generator)
        simulated = time.perf_counter() - start
        start = time.perf_counter()
        advantages = normalised_advantages(train, config.discount, config.gae_lambda)
        with torch.no_grad():
            fast = adapt({n: v.detach() for n, v in params.items()}, train, advantages, config.inner_lr)
        adapting = time.perf_counter() - start
        start = time.perf_counter()
        valid = sample_episodes(fast, env, batch, 20, generator)
        simulated += time.perf_counter() - start
        start = time.perf_counter()
        trpo_step(params, meta_objective(params, train, valid, config), config.max_kl)
        trpo = time.perf_counter() - start
        for name, value in zip(parts, (simulated, adapting, trpo)):
            parts[name].append(value)
    medians = {name: statistics.median(values[1:]) for name, values in parts.items()}  # the first warms up
    total = sum(medians.values())
    return {
        **{name: round(value, 3) for name, value in medians.items()},
        "share simulating": round(medians["simulating (both samples)"] / total, 4),
    }


def navigation_meta_iteration() -> dict[str, float]:
    env = PointNavigation()
    return meta_iteration_shares(env, lambda g: env.sample(20, g).float(), (2, 2), tasks=20, rounds=3)


def cheetah_meta_iteration() -> dict[str, float]:
    """HalfCheetah forward/backward at the preset's size: 40 tasks x 20 episodes of 200 steps, SyncVectorEnv."""
    sampler = cheetah_directions()
    with VectorTasks(sampler, 40, 20) as env:
        return meta_iteration_shares(env, lambda g: sampler.sample(40, g), (17, 6), tasks=40, rounds=1)


def main() -> None:
    torch.set_num_threads(1)
    append(
        "rl_simulators",
        {
            "setting": "presets' policies, 1 thread",
            "threads": 1,
            "navigation 20 tasks x 2 episodes (steps/s)": navigation_rates(20, 2, asynchronous=True),
            "navigation 20 tasks x 20 episodes (steps/s)": navigation_rates(20, 20, asynchronous=False),
            "cheetah 8 copies x 200 steps (steps/s)": cheetah_rates(8),
            "navigation meta-iteration (s)": navigation_meta_iteration(),
            "cheetah meta-iteration (s)": cheetah_meta_iteration(),
        },
    )


if __name__ == "__main__":
    main()
