"""Episodic meta-training of a small model over precomputed features (the encoder stays frozen and is run once)."""

from __future__ import annotations

import math

import torch

from learntolearn.algorithms.base import Algorithm
from learntolearn.data import EpisodeSampler
from learntolearn.data.text import TextClassDataset
from learntolearn.engine.build import OPTIMIZERS
from learntolearn.errors import ConfigError


def meta_train(
    algorithm: Algorithm,
    dataset: TextClassDataset,
    *,
    ways: int,
    shots: int,
    queries: int,
    steps: int,
    lr: float = 1e-3,
    meta_batch: int = 4,
    seed: int = 0,
    outer_optimizer: str = "adam",
) -> list[float]:
    """Adam (or SGD, e.g. for Reptile's interpolation) on ``algorithm.meta_loss`` of seeded episodes from
    ``dataset`` (which must carry features); returns the losses."""
    torch.manual_seed(seed)
    sampler = EpisodeSampler(dataset, ways, shots, queries, seed=seed)
    if outer_optimizer not in OPTIMIZERS:
        raise ConfigError(f"unknown outer optimizer {outer_optimizer!r}; choose from {', '.join(OPTIMIZERS)}")
    optimizer = OPTIMIZERS[outer_optimizer]([p for p in algorithm.parameters() if p.requires_grad], lr=lr)
    losses = []
    algorithm.train()
    for step in range(steps):
        loss = algorithm.meta_loss(sampler.sample_many(meta_batch)).loss
        if not math.isfinite(loss.item()):
            raise FloatingPointError(
                f"the meta-loss became {loss.item()} at step {step + 1}; lower the learning rate ({lr})"
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    algorithm.eval()
    return losses
