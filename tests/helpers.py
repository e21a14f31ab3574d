"""Shared pieces of the learning tests."""

from typing import Callable, Sequence

import torch

from learntolearn.algorithms import Algorithm
from learntolearn.types import Task


def meta_train(algorithm: Algorithm, next_batch: Callable[[], Sequence[Task]], steps: int,
               optimizer: torch.optim.Optimizer) -> None:
    """Take ``steps`` outer steps on ``algorithm.meta_loss`` of successive task batches."""
    for _ in range(steps):
        algorithm.train()
        loss = algorithm.meta_loss(next_batch()).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
