"""Seeded N-way K-shot episode sampling by tensor indexing, and fixed evaluation episode sets."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor

from learntolearn.data.indexed import EpisodicData
from learntolearn.errors import DataError
from learntolearn.files import load_tensors, save_tensors
from learntolearn.types import Task

EPISODE_SET_VERSION = 1


#: seeds of the fixed validation and test episodes of every run (versioned with ``EPISODE_SET_VERSION``)
VAL_EPISODE_SEED = 1
TEST_EPISODE_SEED = 2


def check_episode_shape(dataset: EpisodicData, ways: int, shots: int, queries: int) -> None:
    """Raise ``ValueError`` naming the limit when ``dataset`` cannot supply such episodes."""
    if ways < 1 or shots < 1 or queries < 0:
        raise DataError(f"need ways >= 1, shots >= 1 and queries >= 0, got {ways}-way {shots}-shot {queries}-query")
    if ways > dataset.n_classes:
        raise DataError(
            f"{ways}-way episodes need {ways} classes but {dataset.name} has only {dataset.n_classes}; "
            f"lower the number of ways"
        )
    smallest = int(dataset.counts.argmin())
    size = int(dataset.counts[smallest])
    if shots + queries > size:
        raise DataError(
            f"{shots} shots + {queries} queries = {shots + queries} images per class, but class "
            f"{dataset.class_names[smallest]!r} of {dataset.name} has only {size}; lower shots or queries"
        )


def draw_plans(
    dataset: EpisodicData, ways: int, shots: int, queries: int, count: int, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Choose classes and images for ``count`` episodes at once.

    Returns:
        classes: int64 ``(count, ways)``, class indices of the data set.
        images: int64 ``(count, ways, shots + queries)``, rows of ``dataset.images``; the first
            ``shots`` of each class are the support set.
    """
    # The k largest of i.i.d. uniform keys are a uniformly random k-subset in random order; topk is
    # linear in the number of classes where a full argsort is not.
    classes = torch.rand(count, dataset.n_classes, generator=generator).topk(ways, dim=1).indices
    counts = dataset.counts[classes]
    keys = torch.rand(count, ways, int(counts.max()), generator=generator)
    keys.masked_fill_(torch.arange(keys.shape[-1]) >= counts.unsqueeze(-1), -1.0)
    picks = keys.topk(shots + queries, dim=-1).indices
    return classes, dataset.offsets[classes].unsqueeze(-1) + picks


def task_from_plan(dataset: EpisodicData, classes: Tensor, images: Tensor, shots: int) -> Task:
    """Gather one episode given its ``classes (ways,)`` and ``images (ways, shots + queries)``."""
    ways, per_class = images.shape
    labels = torch.arange(ways).unsqueeze(1)
    return Task(
        support_x=dataset.to_float(images[:, :shots].reshape(-1)),
        support_y=labels.expand(ways, shots).reshape(-1),
        query_x=dataset.to_float(images[:, shots:].reshape(-1)),
        query_y=labels.expand(ways, per_class - shots).reshape(-1),
        class_ids=classes.clone(),
    )


class EpisodeSampler:
    """An endless, seeded stream of N-way K-shot Q-query episodes from an in-memory data set.

    Episodes are drawn ``batch`` at a time with a few tensor ops; the stream depends only on the
    seed, and ``state_dict`` / ``load_state_dict`` let a resumed run continue it exactly.
    """

    def __init__(
        self, dataset: EpisodicData, ways: int, shots: int, queries: int, *, seed: int = 0, batch: int = 64
    ) -> None:
        check_episode_shape(dataset, ways, shots, queries)
        self.dataset, self.ways, self.shots, self.queries = dataset, ways, shots, queries
        self.batch = batch
        self.generator = torch.Generator().manual_seed(seed)
        self._pending: list[tuple[Tensor, Tensor]] = []

    def _next_plan(self) -> tuple[Tensor, Tensor]:
        if not self._pending:
            classes, images = draw_plans(self.dataset, self.ways, self.shots, self.queries, self.batch, self.generator)
            self._pending = list(zip(classes.unbind(0), images.unbind(0)))[::-1]
        return self._pending.pop()

    def sample(self) -> Task:
        return task_from_plan(self.dataset, *self._next_plan(), self.shots)

    def sample_many(self, count: int, keep: range | None = None) -> list[Task]:
        """The next ``count`` episodes of the stream, or only those at positions ``keep`` of them.

        The stream advances by ``count`` either way, so processes that each keep a different share
        of a meta-batch stay in step (distributed training) without gathering the others' images.
        """
        plans = [self._next_plan() for _ in range(count)]
        return [
            task_from_plan(self.dataset, *plans[i], self.shots) for i in (keep if keep is not None else range(count))
        ]

    def __iter__(self):
        while True:
            yield self.sample()

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "pending": list(self._pending)}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self._pending = list(state["pending"])


@dataclass(frozen=True)
class EpisodeSet:
    """A fixed, saved list of episodes so every method is evaluated on the same tasks (paired).

    Only indices are stored; ``dataset_name`` and ``n_classes`` guard against pairing them with
    another data set.
    """

    dataset_name: str
    n_classes: int
    shots: int
    seed: int
    classes: Tensor
    images: Tensor

    @classmethod
    def generate(cls, dataset: EpisodicData, ways: int, shots: int, queries: int, count: int, seed: int) -> EpisodeSet:
        check_episode_shape(dataset, ways, shots, queries)
        classes, images = draw_plans(dataset, ways, shots, queries, count, torch.Generator().manual_seed(seed))
        return cls(dataset.name, dataset.n_classes, shots, seed, classes, images)

    def __len__(self) -> int:
        return int(self.classes.shape[0])

    def tasks(self, dataset: EpisodicData):
        """Yield the episodes as :class:`Task` objects gathered from ``dataset``."""
        if dataset.name != self.dataset_name or dataset.n_classes != self.n_classes:
            raise DataError(
                f"these episodes were drawn from {self.dataset_name} ({self.n_classes} classes), "
                f"not {dataset.name} ({dataset.n_classes} classes)"
            )
        for classes, images in zip(self.classes, self.images):
            yield task_from_plan(dataset, classes, images, self.shots)

    def save(self, path: str | os.PathLike[str]) -> None:
        save_tensors({"version": EPISODE_SET_VERSION, **self.__dict__}, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EpisodeSet:
        state = load_tensors(path, "episode set")
        version = state.pop("version", None)
        if version != EPISODE_SET_VERSION:
            raise DataError(
                f"{path} holds episode-set format {version}; this learntolearn reads format {EPISODE_SET_VERSION}"
            )
        return cls(**state)
