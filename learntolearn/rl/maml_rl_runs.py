"""MAML-RL runs on 2D navigation: presets, resumable meta-training in a locked run folder, and evaluation of the
return after 0-3 adaptation steps on fixed held-out goals (the same goals and sampling noise for every run, so
runs and the random initialisation compare paired)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from learntolearn.engine.evaluate import confidence_interval
from learntolearn.errors import LtlError, UnknownNameError
from learntolearn.files import FolderLock, load_tensors, save_tensors
from learntolearn.rl.maml_rl import MAMLRLSettings, Params, init_policy, meta_iteration, returns_while_adapting
from learntolearn.rl.runs import EVALUATION_SEED, TRAINING_SEED_OFFSET, matching_checkpoint
from learntolearn.rl.tasks import PointNavigation

ALGORITHM = "maml-rl"


@dataclass(frozen=True)
class MAMLRLRunConfig(MAMLRLSettings):
    name: str = "maml-rl-navigation"
    hidden: tuple[int, ...] = (100, 100)
    meta_batch: int = 20
    rollouts: int = 20
    iterations: int = 500
    seed: int = 0
    checkpoint_every: int = 10


PRESETS: dict[str, MAMLRLRunConfig] = {
    "maml-rl-navigation": MAMLRLRunConfig(),
    "fomaml-rl-navigation": MAMLRLRunConfig(name="fomaml-rl-navigation", first_order=True),
    # one policy trained by TRPO on all goals, fine-tuned at test time like MAML's (Finn et al.'s "pretrained")
    "pretrained-rl-navigation": MAMLRLRunConfig(name="pretrained-rl-navigation", inner_steps=0),
}


def preset(name: str, seed: int | None = None, iterations: int | None = None) -> MAMLRLRunConfig:
    if name not in PRESETS:
        raise UnknownNameError(f"unknown MAML-RL preset {name!r}; choose from {', '.join(sorted(PRESETS))}")
    changes: dict[str, Any] = {"seed": seed} if seed is not None else {}
    if iterations is not None:
        changes["iterations"] = iterations
    return replace(PRESETS[name], **changes)


def initial_policy(config: MAMLRLRunConfig) -> Params:
    return init_policy(2, 2, config.hidden, torch.Generator().manual_seed(config.seed))


def train_maml_rl(config: MAMLRLRunConfig, run: Path, log: Callable[[str], Any] = print) -> Params:
    """Meta-train ``config`` in the folder ``run``, continuing from its checkpoint if there is one."""
    env = PointNavigation()
    params = initial_policy(config)
    generator = torch.Generator().manual_seed(TRAINING_SEED_OFFSET + config.seed)
    iteration, cpu_before, history = 0, 0.0, []
    run.mkdir(parents=True, exist_ok=True)
    with FolderLock(run):
        state = matching_checkpoint(run, asdict(config), "MAML-RL checkpoint")
        if state is not None:
            params = dict(state["policy"])
            generator.set_state(state["generator"])
            iteration, cpu_before, history = state["iteration"], state["cpu_seconds"], list(state["history"])
            log(f"resuming at iteration {iteration}")
        for value in params.values():
            value.requires_grad_(True)
        started = time.process_time()
        while iteration < config.iterations:
            goals = env.sample(config.meta_batch, generator).float()
            step, before, after = meta_iteration(params, env, goals, config.rollouts, config, generator)
            iteration += 1
            history.append((before.mean().item(), after.mean().item(), step.kl, float(step.accepted)))
            if iteration % config.checkpoint_every == 0 or iteration == config.iterations:
                cpu = cpu_before + time.process_time() - started
                save_tensors(
                    {
                        "algorithm": ALGORITHM,
                        "config": asdict(config),
                        "policy": {n: v.detach() for n, v in params.items()},
                        "generator": generator.get_state(),
                        "iteration": iteration,
                        "cpu_seconds": cpu,
                        "history": history,
                    },
                    run / "checkpoint.pt",
                )
                log(
                    f"iteration {iteration}: return {before.mean().item():.2f} before adapting, "
                    f"{after.mean().item():.2f} after, {cpu:.0f} CPU s"
                )
    return {n: v.detach() for n, v in params.items()}


def evaluate_policy(
    params: Params, config: MAMLRLRunConfig, tasks: int = 100, steps: int = 3, seed: int = EVALUATION_SEED
) -> dict[str, Any]:
    """Average return per held-out goal after 0..``steps`` adaptation steps (``config``'s inner step size)."""
    env = PointNavigation()
    goals = env.sample(tasks, torch.Generator().manual_seed(seed)).float()
    returns = returns_while_adapting(
        params, env, goals, config.rollouts, steps, config, torch.Generator().manual_seed(seed + 1)
    )
    return {
        "mean": returns.mean(1).tolist(),
        "ci95": [confidence_interval(row) for row in returns],
        "returns": returns.tolist(),
    }


def is_maml_rl_run(run: Path) -> bool:
    return load_tensors(Path(run) / "checkpoint.pt", "RL checkpoint").get("algorithm") == ALGORITHM


def evaluate_maml_rl(run: Path, tasks: int = 100, steps: int = 3) -> dict[str, Any]:
    state = load_tensors(Path(run) / "checkpoint.pt", "MAML-RL checkpoint")
    if state.get("algorithm") != ALGORITHM:
        raise LtlError(f"{run} is not a MAML-RL run")
    config = MAMLRLRunConfig(**{**state["config"], "hidden": tuple(state["config"]["hidden"])})
    scored = evaluate_policy(dict(state["policy"]), config, tasks, steps)
    return {"preset": config.name, "iteration": state["iteration"], "cpu_seconds": state["cpu_seconds"], **scored}
