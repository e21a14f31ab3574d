"""Shared pieces of the learning tests."""

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from learntolearn.algorithms import Algorithm
from learntolearn.types import Task

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def real_data_root() -> Path | None:
    """``$LTL_DATA`` if it holds Omniglot, else ``../shared/data`` beside the repository, else None."""
    for candidate in (os.environ.get("LTL_DATA"), SHARED_DATA):
        if candidate and (Path(candidate) / "omniglot" / "images_background.zip").exists():
            return Path(candidate)
    return None


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


#: a tiny language whose four words' meanings meta-learners must read off each episode's study examples
COLOUR_WORDS = {"dax": "RED", "wif": "BLUE", "lug": "GREEN", "zup": "YELLOW"}
COLOUR_PAIRS = [
    ((word, *modifier), (action,) * times)
    for word, action in COLOUR_WORDS.items()
    for modifier, times in (((), 1), (("twice",), 2), (("thrice",), 3))
] + [((a, "and", b), (COLOUR_WORDS[a], COLOUR_WORDS[b])) for a in COLOUR_WORDS for b in COLOUR_WORDS if a != b]
