"""Task sources: where a run's training tasks and its fixed validation and test tasks come from.

The :class:`~learntolearn.engine.trainer.Trainer` reads every kind of task through one
:class:`TaskSource`: episodes of a registered class data set (images, or texts as sentence
embeddings), or a generated task distribution such as MAML's sinusoids. A new family plugs in by
registering a builder in :data:`TASK_SOURCES`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from learntolearn.data import DATASETS, TEST_EPISODE_SEED, VAL_EPISODE_SEED, EpisodeSampler, EpisodeSet, load_dataset
from learntolearn.data.augment import AffineDistortedEpisodes
from learntolearn.data.sinusoid import SinusoidTasks
from learntolearn.engine.config import TrainConfig
from learntolearn.errors import ConfigError
from learntolearn.registry import Registry
from learntolearn.types import Task


class TaskSampler(Protocol):
    """A seeded stream of training tasks whose position is saved in checkpoints."""

    def sample_many(self, count: int, keep: range | None = None) -> list[Task]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class TaskSource:
    """Training tasks, fixed validation and test tasks, and what building the model needs to know."""

    #: draws training tasks; its state is checkpointed so that a resumed run sees the same tasks
    sampler: TaskSampler
    #: the fixed validation tasks, produced afresh on each call; None when the run does not validate
    validation: Callable[[], Iterable[Task]] | None
    #: the fixed test tasks, produced afresh on each call, and how many there are
    test: Callable[[], Iterable[Task]]
    test_count: int
    #: shape of one input, the number of classes training draws from, and whether the tasks are regressions
    input_shape: tuple[int, ...]
    train_classes: int
    regression: bool
    #: writes the fixed test tasks beside the run (None when they are regenerated from a seed instead)
    save_test: Callable[[Path], None] | None = None
    #: how many validation tasks :attr:`validation` produces (for progress bars)
    validation_count: int | None = None


#: name of a task distribution -> builder(config, data_root, download) of its TaskSource
TASK_SOURCES: Registry[Callable[..., TaskSource]] = Registry("task source")


def task_source(config: TrainConfig, *, data_root: str | None = None, download: bool = False) -> TaskSource:
    """The source of ``config.episodes.dataset``: a registered task distribution, else episodes of the data set."""
    name = config.episodes.dataset
    builder = TASK_SOURCES.get(name) if name in TASK_SOURCES else episodic_source
    return builder(config, data_root=data_root, download=download)


def episodic_source(config: TrainConfig, *, data_root: str | None = None, download: bool = False) -> TaskSource:
    """N-way K-shot episodes of a registered class data set, shaped by ``config.episodes``."""
    e, run = config.episodes, config.run
    DATASETS.get(e.dataset)
    options = {"data_root": data_root, "image_size": e.image_size, "download": download}
    train = load_dataset(e.dataset, e.split, e.train_subset, **options)
    val = load_dataset(e.dataset, e.split, e.val_subset, **options) if run.val_every else None
    test = load_dataset(e.dataset, e.split, e.test_subset, **options)
    sampler: TaskSampler = EpisodeSampler(train, e.training_ways, e.training_shots, e.training_queries, seed=run.seed)
    if e.train_augment == "affine":
        if len(train.input_shape) != 3:
            raise ConfigError(
                f"train_augment affine distorts images; {e.dataset} holds inputs of shape {train.input_shape}: "
                "use train_augment none"
            )
        sampler = AffineDistortedEpisodes(sampler, run.seed)
    test_episodes = EpisodeSet.generate(test, e.ways, e.shots, e.queries, run.test_episodes, TEST_EPISODE_SEED)
    validation = None
    if val is not None:
        val_episodes = EpisodeSet.generate(val, e.ways, e.shots, e.queries, run.val_episodes, VAL_EPISODE_SEED)

        def validation() -> Iterable[Task]:
            return val_episodes.tasks(val)

    return TaskSource(
        sampler,
        validation,
        lambda: test_episodes.tasks(test),
        len(test_episodes),
        train.input_shape,
        train.n_classes,
        False,
        save_test=test_episodes.save,
        validation_count=run.val_episodes if val is not None else None,
    )


#: seeds of the sinusoid streams: training uses the run's seed; validation and test tasks have their own
SINUSOID_VAL_SEED, SINUSOID_TEST_SEED = 2000, 1000


@TASK_SOURCES.register("sinusoid")
def sinusoid_source(config: TrainConfig, **_: object) -> TaskSource:
    """MAML's sinusoid regression (Finn et al. 2017, Section 5.1): ``shots`` support and ``queries`` query
    points per task; validation and test tasks come from streams of their own seeds."""
    e, run = config.episodes, config.run
    test_tasks = SinusoidTasks(e.shots, e.queries, seed=SINUSOID_TEST_SEED).fixed(run.test_episodes)
    validation = None
    if run.val_every:
        val_tasks = SinusoidTasks(e.shots, e.queries, seed=SINUSOID_VAL_SEED).fixed(run.val_episodes)

        def validation() -> Iterable[Task]:
            return iter(val_tasks)

    sampler = SinusoidTasks(e.training_shots, e.training_queries, seed=run.seed)
    return TaskSource(
        sampler,
        validation,
        lambda: iter(test_tasks),
        len(test_tasks),
        (1,),
        0,
        True,
        validation_count=run.val_episodes if run.val_every else None,
    )
