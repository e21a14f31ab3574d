"""RL² runs: presets for the settings of RL²'s tables, resumable meta-training in a run folder, and evaluation on
the same fixed tasks the reference learners' tables use (so the differences are paired)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from learntolearn.engine.evaluate import confidence_interval
from learntolearn.engine.stopping import StopRequests
from learntolearn.errors import StoppedError, UnknownNameError
from learntolearn.files import FolderLock, load_tensors, matching_checkpoint, save_tensors
from learntolearn.rl.rl2 import BanditTrials, MDPTrials, PPOConfig, RL2Policy, Trials, ppo_update, rollout
from learntolearn.rl.tasks import TabularMDPs

#: evaluation tasks are drawn with this seed, as scripts/reproduce/rl2_bandits.py and rl2_mdps.py draw theirs
EVALUATION_SEED = 0
#: meta-training tasks come from another stream, so that no evaluation task is trained on
TRAINING_SEED_OFFSET = 1_000_003


@dataclass(frozen=True)
class RL2RunConfig:
    name: str
    task: str  # "bandits" or "mdps"
    arms: int = 5
    pulls: int = 10
    episodes: int = 10
    hidden: int = 256
    tasks_per_iteration: int = 128
    iterations: int = 1000
    # PPO's settings, with PPOConfig's defaults (runs written before discount and entropy were settings used these)
    learning_rate: float = PPOConfig.learning_rate
    gae_lambda: float = PPOConfig.gae_lambda
    discount: float = PPOConfig.discount
    entropy: float = PPOConfig.entropy  # weight of the policy's entropy in PPO's loss
    value_scale: float = PPOConfig.value_scale
    seed: int = 0
    checkpoint_every: int = 25


#: trials of 100 steps or more reach discounted returns in the tens: their value head learns in tenths
LONG_TRIAL_VALUE_SCALE = 10.0

PRESETS: dict[str, RL2RunConfig] = {
    **{
        f"rl2-bandits-k{k}-n{n}": RL2RunConfig(
            f"rl2-bandits-k{k}-n{n}", "bandits", arms=k, pulls=n, value_scale=1.0 if n < 100 else LONG_TRIAL_VALUE_SCALE
        )
        for k in (5, 10, 50)
        for n in (10, 100, 500)
    },
    **{
        f"rl2-mdp-n{n}": RL2RunConfig(f"rl2-mdp-n{n}", "mdps", episodes=n, value_scale=LONG_TRIAL_VALUE_SCALE)
        for n in (10, 25, 50, 75, 100)
    },
}


def preset(name: str, seed: int | None = None, iterations: int | None = None) -> RL2RunConfig:
    if name not in PRESETS:
        raise UnknownNameError(f"unknown RL² preset {name!r}; choose from {', '.join(sorted(PRESETS))}")
    config = PRESETS[name]
    changes: dict[str, Any] = {"seed": seed} if seed is not None else {}
    if iterations is not None:
        changes["iterations"] = iterations
    return replace(config, **changes)


def stopped_error(
    signal_name: str, config: Any, iteration: int, run: Path, presets: dict[str, Any], nproc: int = 1
) -> StoppedError:
    """The error a run stopped by a signal ends with: where it stopped and the command that continues it."""
    command = f"ltl rl train {config.name} --run {run}"
    default = presets.get(config.name)
    if default is not None and config.iterations != default.iterations:
        command += f" --iterations {config.iterations}"
    if config.seed != 0:
        command += f" --seed {config.seed}"
    if nproc > 1:
        command += f" --nproc {nproc}"
    return StoppedError(
        f"stopped by {signal_name} at iteration {iteration} of {config.iterations}, saved in "
        f"{run / 'checkpoint.pt'}; continue with `{command}`"
    )


def trials_of(config: RL2RunConfig) -> Trials:
    if config.task == "bandits":
        return BanditTrials(config.arms, config.pulls)
    return MDPTrials(TabularMDPs(states=10, actions=5, horizon=10), config.episodes)


def train_rl2(config: RL2RunConfig, run: Path, log: Callable[[str], Any] = print) -> RL2Policy:
    """Meta-train ``config`` in the folder ``run``, continuing from its checkpoint if there is one. Ctrl-C or
    SIGTERM stops it after the current iteration with a checkpoint and raises :class:`StoppedError`."""
    trials = trials_of(config)
    torch.manual_seed(config.seed)
    policy = RL2Policy(trials.observations, trials.actions, config.hidden)
    optimiser = torch.optim.Adam(policy.parameters(), lr=config.learning_rate)
    generator = torch.Generator().manual_seed(TRAINING_SEED_OFFSET + config.seed)
    ppo = PPOConfig(
        discount=config.discount,
        entropy=config.entropy,
        learning_rate=config.learning_rate,
        gae_lambda=config.gae_lambda,
        value_scale=config.value_scale,
    )
    iteration, cpu_before, history = 0, 0.0, []
    run.mkdir(parents=True, exist_ok=True)
    with FolderLock(run), StopRequests() as stop_requests:
        checkpoint = run / "checkpoint.pt"
        state = matching_checkpoint(run, asdict(config), "RL² checkpoint")
        if state is not None:
            policy.load_state_dict(state["policy"])
            optimiser.load_state_dict(state["optimiser"])
            generator.set_state(state["generator"])
            torch.set_rng_state(state["torch_random"])
            iteration, cpu_before = state["iteration"], state["cpu_seconds"]
            # checkpoints written before the history was kept hold none: the curve then starts at the resume
            history = list(state.get("history", [float("nan")] * iteration))
            log(f"resuming at iteration {iteration}")
        started = time.process_time()
        while iteration < config.iterations:
            batch = rollout(policy, trials, trials.sample(config.tasks_per_iteration, generator), generator)
            ppo_update(policy, optimiser, batch, ppo)
            iteration += 1
            history.append(batch.totals.mean().item())
            stopping = stop_requests.signal is not None
            if stopping or iteration % config.checkpoint_every == 0 or iteration == config.iterations:
                cpu = cpu_before + time.process_time() - started
                save_tensors(
                    {
                        "config": asdict(config),
                        "policy": policy.state_dict(),
                        "optimiser": optimiser.state_dict(),
                        "generator": generator.get_state(),
                        "torch_random": torch.get_rng_state(),
                        "iteration": iteration,
                        "cpu_seconds": cpu,
                        "history": history,
                    },
                    checkpoint,
                )
                log(f"iteration {iteration}: mean trial reward {batch.totals.mean().item():.2f}, {cpu:.0f} CPU s")
            if stop_requests.signal is not None:
                raise stopped_error(stop_requests.signal, config, iteration, run, PRESETS)
    return policy


def evaluate_rl2(run: Path, tasks: int = 1000, seed: int = EVALUATION_SEED) -> dict[str, Any]:
    """Total reward per trial of the run's policy on ``tasks`` fixed tasks (actions sampled, seeded)."""
    state = load_tensors(Path(run) / "checkpoint.pt", "RL² checkpoint")
    config = RL2RunConfig(**state["config"])
    trials = trials_of(config)
    policy = RL2Policy(trials.observations, trials.actions, config.hidden)
    policy.load_state_dict(state["policy"])
    parameters = trials.sample(tasks, torch.Generator().manual_seed(seed))
    totals = rollout(policy, trials, parameters, torch.Generator().manual_seed(seed + 1)).totals
    return {
        "preset": config.name,
        "iteration": state["iteration"],
        "cpu_seconds": state["cpu_seconds"],
        "mean": totals.mean().item(),
        "ci95": confidence_interval(totals),
        "totals": totals.tolist(),
    }
