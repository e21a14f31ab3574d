"""Episodes of variable ways and imbalanced shots, as Meta-Dataset draws them (Triantafillou et al., ICLR 2020,
"Meta-Dataset: A Dataset of Datasets for Learning to Learn from Few Examples", Section 3.2).

Per episode: the number of ways uniform in ``[min_ways, min(max_ways, classes)]``; the same number of
queries for every class, ``min(max_queries, half the smallest chosen class)``; a support-set size from
a uniform ``beta`` in ``(0, 1]``, ``sum_c floor(beta * min(max_per_class, remaining_c)) + 1`` capped at
``max_support``; then each class's shots in proportion to its size times a random weight in
``[1/2, 2]``, at least one, at most what the queries left. The defaults are Meta-Dataset's evaluation
values (5-50 ways, at most 10 queries per class, supports of at most 500 images, 100 per class).
Only indices are kept, so every method scores the same episodes (paired).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from learntolearn.data.indexed import EpisodicData
from learntolearn.errors import DataError
from learntolearn.types import Task


@dataclass(frozen=True)
class EpisodeShape:
    """The limits of the episodes (Meta-Dataset's names in parentheses)."""

    min_ways: int = 5
    max_ways: int = 50  # max_ways_upper_bound
    max_queries: int = 10  # max_num_query
    max_support: int = 500  # max_support_set_size
    max_per_class: int = 100  # max_support_size_contrib_per_class
    min_log_weight: float = math.log(0.5)
    max_log_weight: float = math.log(2.0)


@dataclass(frozen=True)
class VariablePlan:
    """One episode: its classes, and per class the data set rows of its support and query images."""

    classes: Tensor
    support: tuple[Tensor, ...]
    query: tuple[Tensor, ...]

    @property
    def shots(self) -> list[int]:
        return [len(rows) for rows in self.support]

    def task(self, dataset: EpisodicData) -> Task:
        support_y = torch.cat([torch.full((len(rows),), c) for c, rows in enumerate(self.support)])
        query_y = torch.cat([torch.full((len(rows),), c) for c, rows in enumerate(self.query)])
        return Task(
            support_x=dataset.to_float(torch.cat(self.support)),
            support_y=support_y,
            query_x=dataset.to_float(torch.cat(self.query)),
            query_y=query_y,
            class_ids=self.classes.clone(),
        )


def draw_variable_plan(dataset: EpisodicData, shape: EpisodeShape, generator: torch.Generator) -> VariablePlan:
    """One episode of ``dataset`` with variable ways and shots (module docstring)."""
    counts = dataset.counts
    if dataset.n_classes < shape.min_ways:
        raise DataError(f"{dataset.name} has {dataset.n_classes} classes; episodes need at least {shape.min_ways}")
    if int(counts.min()) < 2:
        raise DataError(f"every class of {dataset.name} needs two images (a support and a query image)")
    most = min(shape.max_ways, dataset.n_classes)
    ways = int(torch.randint(shape.min_ways, most + 1, (1,), generator=generator))
    if shape.max_support < ways:
        raise DataError(f"max_support={shape.max_support} cannot give each of {ways} ways one support image")
    classes = torch.randperm(dataset.n_classes, generator=generator)[:ways]
    sizes = counts[classes]
    queries = min(shape.max_queries, int(sizes.min()) // 2)
    remaining = sizes - queries
    beta = 1.0 - float(torch.rand(1, generator=generator))  # in (0, 1]
    support_size = min(int(torch.floor(beta * remaining.clamp(max=shape.max_per_class) + 1).sum()), shape.max_support)
    log_weights = torch.empty(ways, dtype=torch.float64).uniform_(
        shape.min_log_weight, shape.max_log_weight, generator=generator
    )
    proportions = sizes.double() * log_weights.exp()
    proportions /= proportions.sum()
    shots = torch.minimum(torch.floor(proportions * (support_size - ways)).long() + 1, remaining)
    support, query = [], []
    for c, k in zip(classes.tolist(), shots.tolist()):
        order = torch.randperm(int(counts[c]), generator=generator) + int(dataset.offsets[c])
        support.append(order[:k])
        query.append(order[k : k + queries])
    return VariablePlan(classes, tuple(support), tuple(query))


class VariableEpisodeSet:
    """``count`` fixed variable-shape episodes of ``dataset`` from ``seed``: the same for every method."""

    def __init__(self, dataset: EpisodicData, count: int, seed: int, shape: EpisodeShape | None = None) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.dataset_name, self.seed, self.shape = dataset.name, seed, shape or EpisodeShape()
        self.plans = [draw_variable_plan(dataset, self.shape, generator) for _ in range(count)]

    def __len__(self) -> int:
        return len(self.plans)

    def tasks(self, dataset: EpisodicData):
        if dataset.name != self.dataset_name:
            raise DataError(f"these episodes were drawn from {self.dataset_name}, not {dataset.name}")
        for plan in self.plans:
            yield plan.task(dataset)
