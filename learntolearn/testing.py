"""Tools for testing algorithms: tiny task distributions, and the conformance check every algorithm passes.

Whoever adds an algorithm runs ``check_algorithm(name, folder)`` on it (the test suite does so for
every registered one): it meta-trains through the shared :class:`~learntolearn.engine.trainer.Trainer`
twice on generated glyphs and checks that training is deterministic, that the saved state rebuilds
the same model from the config, and that predictions have one column per way.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from learntolearn.algorithms import ALGORITHMS
from learntolearn.engine.build import build_algorithm
from learntolearn.engine.config import TrainConfig
from learntolearn.engine.trainer import Trainer
from learntolearn.types import Task

#: fast values for settings several algorithms share, used where an algorithm has them
QUICK_SETTINGS = {"inner_steps": 1, "test_inner_steps": 2, "adapt_steps": 3}


def random_task(
    ways: int = 3,
    shots: int = 2,
    queries: int = 2,
    shape: tuple[int, ...] = (6,),
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
) -> Task:
    """A task of random inputs of ``shape`` (nothing to learn: for shapes, gradients and invariances)."""
    return Task(
        torch.randn(ways * shots, *shape, generator=generator, dtype=dtype),
        torch.arange(ways).repeat_interleave(shots),
        torch.randn(ways * queries, *shape, generator=generator, dtype=dtype),
        torch.arange(ways).repeat_interleave(queries),
        torch.arange(ways),
    )


def point_task(
    generator: torch.Generator,
    ways: int = 5,
    shots: int = 1,
    queries: int = 3,
    dim: int = 8,
    noise: float = 0.3,
    noisy_support: bool = False,
) -> Task:
    """Each class is a random point in ``dim`` dimensions and its examples are noisy copies of it.

    With ``noisy_support`` every example is a noisy copy and the first ``shots`` of each class form the
    support set; otherwise the support set is the class points themselves (``shots`` must be 1).
    """
    centres = torch.randn(ways, dim, generator=generator)
    if noisy_support:
        per_class = shots + queries
        x = centres.repeat_interleave(per_class, 0) + noise * torch.randn(ways * per_class, dim, generator=generator)
        y = torch.arange(ways).repeat_interleave(per_class)
        support = torch.arange(ways * per_class) % per_class < shots
        return Task(x[support], y[support], x[~support], y[~support], torch.arange(ways))
    if shots != 1:
        raise ValueError("a support set of the class points themselves has one shot; pass noisy_support=True")
    query_x = centres.repeat_interleave(queries, 0) + noise * torch.randn(ways * queries, dim, generator=generator)
    return Task(centres, torch.arange(ways), query_x, torch.arange(ways).repeat_interleave(queries), torch.arange(ways))


def tiny_config(name: str, **keys: Any) -> TrainConfig:
    """A seconds-long run of algorithm ``name`` on generated glyphs (flat ``keys`` override it)."""
    algorithm = ALGORITHMS.get(name)
    own = algorithm.Config.keys()
    shape = {"backbone": "conv4-maps", "image_size": 28} if algorithm.needs_feature_maps else {}
    values = {
        "dataset": "synthetic",
        "split": "default",
        "image_size": 16,
        "ways": 5,
        "shots": 1,
        "queries": 3,
        "steps": 4,
        "meta_batch": 2,
        "val_every": 2,
        "val_episodes": 4,
        "test_episodes": 4,
        **shape,
        **{k: v for k, v in QUICK_SETTINGS.items() if k in own},
        **keys,
    }
    return TrainConfig.create(algorithm=name, **values)


def check_algorithm(name: str, folder: str | os.PathLike[str], **keys: Any) -> None:
    """Meta-train ``name`` twice through the Trainer; raise ``AssertionError`` unless it is deterministic,
    round-trips its state through a model rebuilt from the config, and predicts ``(queries, ways)``."""
    folder = Path(folder)
    config = tiny_config(name, **keys)
    trainers, results = [], []
    for i in range(2):
        trainers.append(Trainer(config, folder / f"run{i}", progress=False))
        results.append(trainers[-1].run())
    assert results[0] is not None and results[1] is not None
    assert torch.equal(results[0].accuracies, results[1].accuracies), f"{name}: two runs on one seed differ"
    first, second = trainers[0].algorithm.state_dict(), trainers[1].algorithm.state_dict()
    assert first.keys() == second.keys() and all(torch.equal(first[k], second[k]) for k in first), (
        f"{name}: two runs on one seed end with different weights"
    )
    source = trainers[0].source
    fresh = build_algorithm(config, source.input_shape, source.train_classes)
    fresh.load_state_dict(first)
    trained = trainers[0].algorithm
    fresh.eval()
    trained.eval()
    task = next(iter(source.test()))
    with torch.set_grad_enabled(fresh.adapts_by_gradient):
        logits = fresh.predict(fresh.adapt(task.support_x, task.support_y), task.query_x)
        again = trained.predict(trained.adapt(task.support_x, task.support_y), task.query_x)
    ways, queries = config.episodes.ways, config.episodes.ways * config.episodes.queries
    assert logits.shape == (queries, ways), f"{name}: predictions of shape {tuple(logits.shape)}"
    assert torch.allclose(logits, again), f"{name}: a model rebuilt from its saved state predicts differently"
