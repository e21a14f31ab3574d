"""Task distributions for meta-reinforcement learning, simulated for a whole batch of tasks at once in torch.

* :class:`BernoulliBandits` - ``arms`` arms whose success probabilities are drawn from U[0, 1] per task
  (Duan et al. 2016, "RL²", bandit experiments);
* :class:`TabularMDPs` - ``states`` x ``actions`` MDPs with transitions from a flat Dirichlet and normally
  distributed rewards (unit variance) whose means are drawn from N(1, 1) (RL², tabular experiments);
  episodes of ``horizon`` steps start in state 0;
* :class:`PointNavigation` - a point in the plane moved by actions clipped to [-0.1, 0.1]^2, rewarded by
  minus its distance to a goal drawn from U[-0.5, 0.5]^2 (Finn et al. 2017, MAML §5.3), episodes of
  ``horizon`` steps from the origin that end early once both coordinates are within ``goal_tolerance`` of the
  goal (as in the MAML authors' point environment).

Each ``sample(tasks, generator)`` draws task parameters; a simulator built from them steps every task of the
batch (and every parallel episode of a task) with one tensor operation. Invalid parameters, actions or
non-finite values raise :class:`~learntolearn.errors.TaskError` naming the task and the step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from learntolearn.errors import TaskError


def check_finite(name: str, value: Tensor, step: int, parameters: Tensor | None = None) -> None:
    """Raise :class:`TaskError` naming the first task (and its ``parameters`` row, if given) and the step where
    ``value`` (``[tasks, ...]``) is NaN or infinite."""
    bad = ~torch.isfinite(value)
    if bad.any():
        task = int(bad.nonzero()[0, 0])
        given = "" if parameters is None else f" (task parameter {[round(v, 6) for v in parameters[task].tolist()]})"
        raise TaskError(f"{name} is not finite for task {task}{given} at step {step}; check that task's parameters")


@dataclass(frozen=True)
class BernoulliBandits:
    arms: int

    def __post_init__(self) -> None:
        if self.arms < 2:
            raise TaskError(f"a bandit needs at least two arms, not {self.arms}")

    def sample(self, tasks: int, generator: torch.Generator | None = None) -> Tensor:
        """Success probabilities, ``[tasks, arms]``."""
        return torch.rand(tasks, self.arms, generator=generator, dtype=torch.float64)

    def check(self, probabilities: Tensor) -> None:
        if probabilities.ndim != 2 or probabilities.shape[1] != self.arms:
            raise TaskError(f"bandit parameters must be [tasks, {self.arms}], not {list(probabilities.shape)}")
        outside = (probabilities < 0) | (probabilities > 1) | ~torch.isfinite(probabilities)
        if outside.any():
            task = int(outside.nonzero()[0, 0])
            raise TaskError(f"task {task}: arm probabilities must lie in [0, 1], got {probabilities[task].tolist()}")

    def pull(self, probabilities: Tensor, arms: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Rewards (0 or 1) of pulling ``arms`` (``[tasks]`` or ``[tasks, episodes]``)."""
        if arms.dtype != torch.long or (arms < 0).any() or (arms >= self.arms).any():
            raise TaskError(f"arms must be whole numbers in [0, {self.arms - 1}]")
        chosen = probabilities.gather(1, arms.reshape(len(probabilities), -1)).reshape(arms.shape)
        return (torch.rand(arms.shape, generator=generator, dtype=torch.float64) < chosen).to(torch.float64)


@dataclass(frozen=True)
class MDPParameters:
    transitions: Tensor  # [tasks, states, actions, states], rows sum to one
    reward_means: Tensor  # [tasks, states, actions]


@dataclass(frozen=True)
class TabularMDPs:
    states: int = 10
    actions: int = 5
    horizon: int = 10

    def sample(self, tasks: int, generator: torch.Generator | None = None) -> MDPParameters:
        # a flat Dirichlet is normalised unit exponentials
        exponentials = -torch.rand(
            tasks, self.states, self.actions, self.states, generator=generator, dtype=torch.float64
        ).log()
        transitions = exponentials / exponentials.sum(-1, keepdim=True)
        means = 1.0 + torch.randn(tasks, self.states, self.actions, generator=generator, dtype=torch.float64)
        return MDPParameters(transitions, means)

    def check(self, parameters: MDPParameters) -> None:
        shape = (self.states, self.actions, self.states)
        if tuple(parameters.transitions.shape[1:]) != shape:
            raise TaskError(f"transitions must be [tasks, {self.states}, {self.actions}, {self.states}]")
        rows = parameters.transitions.sum(-1)
        bad = ((rows - 1).abs() > 1e-6) | (parameters.transitions < 0).any(-1)
        if bad.any():
            task = int(bad.nonzero()[0, 0])
            raise TaskError(f"task {task}: every transition row must be a probability distribution")
        check_finite("a reward mean", parameters.reward_means.flatten(1), step=0)

    def reset(self, parameters: MDPParameters, episodes: int = 1) -> Tensor:
        return torch.zeros(len(parameters.reward_means), episodes, dtype=torch.long)

    def step(
        self, parameters: MDPParameters, states: Tensor, actions: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Next states and rewards for ``[tasks, episodes]`` states and actions."""
        if actions.dtype != torch.long or (actions < 0).any() or (actions >= self.actions).any():
            raise TaskError(f"actions must be whole numbers in [0, {self.actions - 1}]")
        task = torch.arange(len(states))[:, None].expand_as(states)
        means = parameters.reward_means[task, states, actions]
        rewards = means + torch.randn(means.shape, generator=generator, dtype=torch.float64)
        rows = parameters.transitions[task, states, actions]  # [tasks, episodes, states]
        following = torch.multinomial(rows.reshape(-1, self.states), 1, generator=generator).reshape(states.shape)
        return following, rewards


@dataclass(frozen=True)
class PointNavigation:
    """Finn et al.'s 2D navigation. With ``normalised_actions`` the policy acts in units of ``max_action``
    (each coordinate clipped to [-1, 1], then scaled), as the authors' code wraps the environment in rllab's
    ``normalize``; otherwise actions are clipped to [-max_action, max_action] directly."""

    horizon: int = 100
    goal_range: float = 0.5
    max_action: float = 0.1
    goal_tolerance: float = 0.01
    normalised_actions: bool = False

    def sample(self, tasks: int, generator: torch.Generator | None = None) -> Tensor:
        """Goals, ``[tasks, 2]``."""
        return (2 * torch.rand(tasks, 2, generator=generator, dtype=torch.float64) - 1) * self.goal_range

    def reset(
        self, goals: Tensor, episodes: int = 1, generator: torch.Generator | None = None, first_task: int = 0
    ) -> Tensor:
        """Every episode starts at the origin (``generator`` and ``first_task`` are unused: starts are not random)."""
        return torch.zeros(len(goals), episodes, 2, dtype=goals.dtype)

    def step(self, goals: Tensor, positions: Tensor, actions: Tensor, step: int = 0) -> tuple[Tensor, Tensor]:
        """Next positions and rewards (minus the distance to the goal after the move)."""
        if actions.shape != positions.shape:
            raise TaskError(
                f"actions must be {list(positions.shape)} (two numbers per episode), not {list(actions.shape)}"
            )
        check_finite("an action", actions.flatten(1), step, goals)
        if self.normalised_actions:
            following = positions + actions.clamp(-1.0, 1.0) * self.max_action
        else:
            following = positions + actions.clamp(-self.max_action, self.max_action)
        return following, -(following - goals[:, None, :]).norm(dim=-1)

    def reached(self, goals: Tensor, positions: Tensor) -> Tensor:
        """Whether each episode's position is within ``goal_tolerance`` of its goal in both coordinates."""
        return ((positions - goals[:, None, :]).abs() < self.goal_tolerance).all(-1)
