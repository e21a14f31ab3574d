"""Shared pieces of the learning tests."""

import sys
from collections.abc import Callable, Sequence

import torch

from learntolearn.algorithms import Algorithm
from learntolearn.types import Task


def meta_train(
    algorithm: Algorithm, next_batch: Callable[[], Sequence[Task]], steps: int, optimizer: torch.optim.Optimizer
) -> None:
    """Take ``steps`` outer steps on ``algorithm.meta_loss`` of successive task batches."""
    for _ in range(steps):
        algorithm.train()
        loss = algorithm.meta_loss(next_batch()).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def ltl(*args: str) -> list[str]:
    """The command line that runs ``ltl`` with ``args`` in a fresh Python process."""
    return [sys.executable, "-m", "learntolearn.cli.main", *args]
