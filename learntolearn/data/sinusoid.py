"""Sinusoid regression tasks of MAML (Finn, Abbeel & Levine, ICML 2017, Section 5.1).

A task is ``y = A sin(x - phi)`` with amplitude ``A ~ U[0.1, 5.0]``, phase ``phi ~ U[0, pi]`` and
inputs ``x ~ U[-5, 5]``; K support points and Q query points are drawn per task.
"""

from __future__ import annotations

import math

import torch

from learntolearn.errors import DataError
from learntolearn.types import Task

AMPLITUDE = (0.1, 5.0)
PHASE = (0.0, math.pi)
INPUT_RANGE = (-5.0, 5.0)


class SinusoidTasks:
    """An endless, seeded stream of sinusoid regression tasks; ``x``, ``y`` have shape ``(n, 1)``."""

    def __init__(self, shots: int, queries: int, *, seed: int = 0) -> None:
        if shots < 1 or queries < 1:
            raise DataError(f"need shots >= 1 and queries >= 1, got shots={shots}, queries={queries}")
        self.shots, self.queries = shots, queries
        self.generator = torch.Generator().manual_seed(seed)

    def sample(self) -> Task:
        g = self.generator
        amplitude = AMPLITUDE[0] + (AMPLITUDE[1] - AMPLITUDE[0]) * torch.rand((), generator=g)
        phase = PHASE[0] + (PHASE[1] - PHASE[0]) * torch.rand((), generator=g)
        x = INPUT_RANGE[0] + (INPUT_RANGE[1] - INPUT_RANGE[0]) * torch.rand(self.shots + self.queries, 1, generator=g)
        y = amplitude * torch.sin(x - phase)
        return Task(
            x[: self.shots],
            y[: self.shots],
            x[self.shots :],
            y[self.shots :],
            class_ids=torch.empty(0, dtype=torch.int64),
            parameters=torch.stack([amplitude, phase]),
        )

    def __iter__(self):
        while True:
            yield self.sample()

    def sample_many(self, count: int, keep: range | None = None) -> list[Task]:
        """Draw ``count`` tasks and return those at positions ``keep`` (all by default), as a sampler's share."""
        tasks = [self.sample() for _ in range(count)]
        return tasks if keep is None else [tasks[i] for i in keep]

    def fixed(self, count: int) -> list[Task]:
        """The next ``count`` tasks, e.g. a fixed evaluation set from a stream seeded for it."""
        return [self.sample() for _ in range(count)]

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
