"""Task distributions on gymnasium environments, simulated through gymnasium's vector environments.

* HalfCheetah forward/backward and goal velocity (Finn et al. 2017, Section 5.3) on gymnasium's MuJoCo
  ``HalfCheetah-v5`` model, episodes of 200 steps: the reward is ``direction * forward velocity`` (direction
  +1 or -1 with equal probability) or ``-|forward velocity - goal|`` (goal from U[0, 2]), minus
  ``0.05 * |action|^2`` in both, as in the MAML authors' environments; actions are clipped to [-1, 1].
* :class:`PointNavigationEnv`: the 2D navigation task of :class:`~learntolearn.rl.tasks.PointNavigation` as
  one gymnasium environment, so that the batched tensor simulator can be compared with gymnasium's vector
  environments on the same tasks (``benchmarks/rl_simulators.py``).

:class:`VectorTasks` runs ``tasks x episodes`` copies of an environment in a ``SyncVectorEnv`` or an
``AsyncVectorEnv`` (one process per copy), each copy given its task's parameter, behind the same interface as
the tensor simulators (``reset``, ``step``, ``reached``, ``horizon``), so MAML-RL samples from either.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from learntolearn.errors import TaskError
from learntolearn.rl.tasks import check_finite

CONTROL_COST = 0.05  # 0.5 * 0.1 * |action|^2, the MAML authors' HalfCheetah tasks


class CheetahTask(gym.Wrapper):
    """HalfCheetah-v5 rewarded for running in ``task``'s direction (``kind="direction"``) or at ``task``'s
    velocity (``kind="velocity"``)."""

    def __init__(self, kind: Literal["direction", "velocity"], horizon: int = 200) -> None:
        super().__init__(gym.make("HalfCheetah-v5", max_episode_steps=horizon))
        self.kind, self.task = kind, 1.0

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        action = np.clip(action, -1.0, 1.0)
        observation, _, terminated, truncated, info = self.env.step(action)
        velocity = float(info["x_velocity"])
        progress = self.task * velocity if self.kind == "direction" else -abs(velocity - self.task)
        return observation, progress - CONTROL_COST * float(np.square(action).sum()), terminated, truncated, info


class PointNavigationEnv(gym.Env):
    """One point-navigation episode (see :class:`~learntolearn.rl.tasks.PointNavigation`) as a gymnasium env."""

    def __init__(self, horizon: int = 100, max_action: float = 0.1, goal_tolerance: float = 0.01) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = gym.spaces.Box(-max_action, max_action, (2,), np.float32)
        self.horizon, self.max_action, self.goal_tolerance = horizon, max_action, goal_tolerance
        self.task = np.zeros(2)
        self.position, self.steps = np.zeros(2), 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        super().reset(seed=seed)
        self.position, self.steps = np.zeros(2), 0
        return self.position.astype(np.float32), {}

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        self.position = self.position + np.clip(action, -self.max_action, self.max_action)
        self.steps += 1
        offset = self.position - self.task
        reached = bool((np.abs(offset) < self.goal_tolerance).all())
        return self.position.astype(np.float32), -float(np.linalg.norm(offset)), reached, self.steps >= self.horizon, {}


@dataclass(frozen=True)
class TaskSampler:
    """Draws task parameters ``[tasks, size]`` for a family of environments built by ``make``."""

    name: str
    make: Callable[[], gym.Env]
    draw: Callable[[int, torch.Generator], Tensor]
    horizon: int

    def sample(self, tasks: int, generator: torch.Generator) -> Tensor:
        return self.draw(tasks, generator)


def cheetah_directions(horizon: int = 200) -> TaskSampler:
    def draw(tasks: int, generator: torch.Generator) -> Tensor:
        return (2 * torch.randint(0, 2, (tasks, 1), generator=generator) - 1).float()

    return TaskSampler("cheetah-direction", lambda: CheetahTask("direction", horizon), draw, horizon)


def cheetah_velocities(horizon: int = 200) -> TaskSampler:
    def draw(tasks: int, generator: torch.Generator) -> Tensor:
        return 2 * torch.rand(tasks, 1, generator=generator)

    return TaskSampler("cheetah-velocity", lambda: CheetahTask("velocity", horizon), draw, horizon)


def point_navigation(horizon: int = 100) -> TaskSampler:
    def draw(tasks: int, generator: torch.Generator) -> Tensor:
        return (2 * torch.rand(tasks, 2, generator=generator, dtype=torch.float64) - 1).float() * 0.5

    return TaskSampler("navigation", lambda: PointNavigationEnv(horizon), draw, horizon)


class VectorTasks:
    """``tasks x episodes`` copies of ``sampler``'s environment in one gymnasium vector environment."""

    def __init__(self, sampler: TaskSampler, tasks: int, episodes: int, asynchronous: bool = False) -> None:
        self.sampler, self.tasks, self.episodes, self.horizon = sampler, tasks, episodes, sampler.horizon
        makers = [sampler.make] * (tasks * episodes)
        self.envs: gym.vector.SyncVectorEnv | gym.vector.AsyncVectorEnv = (
            gym.vector.AsyncVectorEnv(makers) if asynchronous else gym.vector.SyncVectorEnv(makers)
        )
        self.action_size = int(np.prod(self.envs.single_action_space.shape or (1,)))
        self.ended = np.zeros(tasks * episodes, dtype=bool)

    def close(self) -> None:
        self.envs.close()

    def __enter__(self) -> VectorTasks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def reset(
        self, parameters: Tensor, episodes: int, generator: torch.Generator | None = None, first_task: int = 0
    ) -> Tensor:
        """Give every copy its task's parameter and start all episodes; observations ``[tasks, episodes, size]``.
        Copy ``i`` of the whole meta-batch (these tasks start at its task ``first_task``) is seeded with
        ``seed + i``, the seed drawn from ``generator``, so runs repeat however the batch is split."""
        if (len(parameters), episodes) != (self.tasks, self.episodes):
            raise TaskError(
                f"this simulator runs {self.tasks} tasks x {self.episodes} episodes, not {len(parameters)} x {episodes}"
            )
        check_finite("a task parameter", parameters, step=0)
        values = parameters.repeat_interleave(episodes, dim=0).numpy()
        self.envs.set_attr("task", [value.item() if value.size == 1 else value for value in values])
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator)) + first_task * episodes
        observations, _ = self.envs.reset(seed=[seed + copy for copy in range(len(values))])
        self.ended[:] = False
        return self.shaped(observations)

    def shaped(self, values: np.ndarray) -> Tensor:
        return torch.from_numpy(np.asarray(values, dtype=np.float32)).reshape(self.tasks, self.episodes, -1)

    def step(self, parameters: Tensor, observations: Tensor, actions: Tensor, step: int) -> tuple[Tensor, Tensor]:
        if actions.shape[-1] != self.action_size:
            raise TaskError(
                f"{self.sampler.name} takes {self.action_size} numbers per action, the policy gives {actions.shape[-1]}"
            )
        check_finite("an action", actions.flatten(1), step, parameters)
        following, rewards, terminated, truncated, _ = self.envs.step(actions.reshape(-1, self.action_size).numpy())
        self.ended = self.ended | terminated | truncated
        following_t, rewards_t = self.shaped(following), self.shaped(rewards)[..., 0]
        check_finite("an observation", following_t.flatten(1), step, parameters)
        check_finite("a reward", rewards_t, step, parameters)
        return following_t, rewards_t

    def reached(self, parameters: Tensor, observations: Tensor) -> Tensor:
        """Episodes that ended (terminated, or truncated at the horizon) at the last step."""
        return torch.from_numpy(self.ended.copy()).reshape(self.tasks, self.episodes)
