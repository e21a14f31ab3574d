"""The run config: the episodes, the run, and the chosen algorithm's own settings.

A :class:`TrainConfig` composes three frozen groups, each checked on construction:

- :class:`EpisodesConfig`: which data set and split, and the shape of training and evaluation episodes;
- :class:`RunConfig`: steps, the outer optimiser and its schedule, validation, checkpoints, precision;
- the algorithm's ``Config`` (see :mod:`learntolearn.algorithms`), under the algorithm's registry name.

In a file (YAML, or the run folder's ``config.json``) it reads::

    format_version: 2
    algorithm: maml
    backbone: conv4-strided
    episodes: {dataset: omniglot, ways: 5, shots: 1, queries: 1}
    run: {steps: 60000, meta_batch: 32}
    maml: {inner_lr: 0.4, compiled: true}

Missing keys take their defaults; a key a group does not have is refused with the keys it does have.
A flat mapping of keys (``{algorithm: maml, ways: 20, inner_lr: 0.1}``) is read as :meth:`TrainConfig.create`
reads keys; the flat ``config.json`` files of learntolearn 0.1 (format 1) are converted on reading.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from learntolearn.algorithms.base import ALGORITHMS, AlgorithmConfig
from learntolearn.data import DATASETS, GENERATED_TASKS
from learntolearn.errors import ConfigError, UnknownNameError
from learntolearn.nn.backbones import BACKBONES
from learntolearn.settings import Settings, setting, unknown_keys_error

FORMAT_VERSION = 2
OUTER_OPTIMIZERS = ("adam", "sgd")
#: "step": halve the outer learning rate every lr_halve_every steps; "linear": anneal it linearly to 0 at the last step
LR_SCHEDULES = ("step", "linear")
PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class EpisodesConfig(Settings):
    """The data set and the shape of the episodes; ``train_*`` default to the evaluation setting."""

    section = "episodes"

    dataset: str = setting("omniglot", "Data set (see `ltl datasets`).")
    split: str = setting("vinyals", "Class split of the data set.")
    train_subset: str = setting("train", "Subset of the split that training episodes are drawn from.")
    val_subset: str = setting("val", "Subset for validation episodes.")
    test_subset: str = setting("test", "Subset for test episodes.")
    image_size: int = setting(28, "Images are resized to this many pixels square.", minimum=4)
    ways: int = setting(5, "Classes per evaluation episode (N).", minimum=2)
    shots: int = setting(1, "Support examples per class (K).", minimum=1)
    queries: int = setting(15, "Query examples per class.", minimum=1)
    train_ways: int | None = setting(None, "Classes per training episode (default: ways).", minimum=2)
    train_shots: int | None = setting(None, "Support examples per class in training (default: shots).", minimum=1)
    train_queries: int | None = setting(None, "Queries per class in training (default: queries).", minimum=1)
    train_augment: str = setting(
        "none",
        "Distortions of training images: none, or affine (Koch et al. 2015's small random rotations, shears, "
        "scales and shifts, each image its own).",
        choices=("none", "affine"),
    )

    def check(self) -> None:
        if self.dataset not in DATASETS and self.dataset not in GENERATED_TASKS:
            raise UnknownNameError(
                f"unknown data set {self.dataset!r}; valid: {', '.join(sorted([*DATASETS.names(), *GENERATED_TASKS]))}"
            )

    @property
    def training_ways(self) -> int:
        return self.train_ways or self.ways

    @property
    def training_shots(self) -> int:
        return self.train_shots or self.shots

    @property
    def training_queries(self) -> int:
        return self.train_queries or self.queries


@dataclass(frozen=True)
class RunConfig(Settings):
    """How meta-training runs: steps, outer optimiser, schedule, validation, checkpoints, precision."""

    section = "run"

    steps: int = setting(1000, "Meta-training steps.", minimum=1)
    meta_batch: int = setting(1, "Tasks per step.", minimum=1)
    outer_optimizer: str = setting(
        "adam", "Meta-optimiser (Reptile's paper update is sgd with lr = outer step size).", choices=OUTER_OPTIMIZERS
    )
    lr: float = setting(1e-3, "Outer learning rate.", minimum=0.0)
    lr_schedule: str = setting(
        "step",
        "step: halve lr every lr_halve_every steps; linear: anneal it to 0 at the last step (Reptile's schedule).",
        choices=LR_SCHEDULES,
    )
    lr_halve_every: int = setting(2000, "Steps between halvings of lr (schedule step).", minimum=1)
    val_every: int = setting(500, "Steps between validations (0: no validation).", minimum=0)
    val_episodes: int = setting(500, "Fixed validation episodes.", minimum=2)
    test_episodes: int = setting(1000, "Fixed test episodes.", minimum=2)
    patience: int = setting(0, "Stop after this many validations without a new best (0: never stop early).", minimum=0)
    checkpoint_every: int = setting(
        100, "Steps between atomic checkpoints (last.pt) that --resume continues from.", minimum=1
    )
    seed: int = setting(0, "Seed of initialisation and training episodes.")
    precision: str = setting(
        "float32",
        "bfloat16: mixed precision where the algorithm supports it (metric-based backbones; MAML-family query passes).",
        choices=PRECISIONS,
    )
    tasks_per_backward: int = setting(
        0,
        "Backpropagate the meta-batch in chunks of this many tasks to cut peak memory (0: as many as fit in "
        "graph_memory_mb, for algorithms whose meta-loss is a mean over tasks; others take it all at once).",
        minimum=0,
    )
    graph_memory_mb: int = setting(
        128,
        "With tasks_per_backward 0: the most memory the saved graph of one backward may take (at least one task "
        "per backward; 0: the whole meta-batch at once).",
        minimum=0,
    )


#: the top-level keys of a format-2 config besides the algorithm's own section
TOP_KEYS = ("format_version", "algorithm", "backbone", "episodes", "run")


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a run: algorithm and backbone names, episodes, run, and the algorithm's settings."""

    algorithm: str = "protonet"
    backbone: str = "conv4"
    episodes: EpisodesConfig = dataclasses.field(default_factory=EpisodesConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)
    #: the algorithm's own settings (an instance of its ``Config``); defaults when not given
    settings: AlgorithmConfig | None = None

    def __post_init__(self) -> None:
        algorithm = ALGORITHMS.get(self.algorithm)
        BACKBONES.get(self.backbone)
        if self.settings is None:
            object.__setattr__(self, "settings", algorithm.Config())
        elif type(self.settings) is not algorithm.Config:
            raise ConfigError(
                f"{self.algorithm} takes settings of type {algorithm.Config.__name__}, got "
                f"{type(self.settings).__name__}"
            )
        if self.run.precision not in algorithm.precisions:
            raise ConfigError(
                f"precision {self.run.precision} is not supported by {self.algorithm} (it supports "
                f"{', '.join(algorithm.precisions)}); leave precision at float32"
            )
        if algorithm.fixed_ways and self.episodes.train_ways not in (None, self.episodes.ways):
            raise ConfigError(
                f"{self.algorithm} has one output per way, so train_ways ({self.episodes.train_ways}) "
                f"must equal ways ({self.episodes.ways})"
            )

    @property
    def algorithm_settings(self) -> AlgorithmConfig:
        assert self.settings is not None  # set in __post_init__
        return self.settings

    # -- building ---------------------------------------------------------------------------
    @classmethod
    def create(cls, algorithm: str = "protonet", backbone: str = "conv4", **keys: Any) -> TrainConfig:
        """A config from flat keys, each routed to the group that has it: ``create(algorithm="maml", ways=20,
        steps=100, inner_lr=0.1)``. A key of no group, or of another algorithm, is an error naming the valid ones."""
        algorithm_type = ALGORITHMS.get(algorithm).Config
        groups: dict[str, dict[str, Any]] = {"episodes": {}, "run": {}, "settings": {}}
        owners = {
            **{k: "episodes" for k in EpisodesConfig.keys()},
            **{k: "run" for k in RunConfig.keys()},
            **{k: "settings" for k in algorithm_type.keys()},
        }
        unknown = [k for k in keys if k not in owners]
        if unknown:
            others = sorted(
                {k for k in unknown if any(k in ALGORITHMS.get(n).Config.keys() for n in ALGORITHMS.names())}
            )
            if others:
                raise UnknownNameError(
                    f"{algorithm} has no setting {', '.join(map(repr, others))}; its own settings: "
                    f"{', '.join(algorithm_type.keys()) or 'none'}"
                )
            raise unknown_keys_error(unknown, list(owners), "config")
        for key, value in keys.items():
            groups[owners[key]][key] = value
        return cls(
            algorithm,
            backbone,
            EpisodesConfig(**groups["episodes"]),
            RunConfig(**groups["run"]),
            algorithm_type(**groups["settings"]),
        )

    def with_keys(self, **keys: Any) -> TrainConfig:
        """This config with some flat keys changed (see :meth:`create`)."""
        return TrainConfig.create(**{**self.flat(), **keys})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainConfig:
        """Build from a format-2 mapping, or convert a format-1 (flat) one."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"a config must be a mapping of key: value, got {type(values).__name__}")
        if not is_nested(values):
            if is_saved_format1(values):
                return cls.from_dict(convert_flat_config(values))
            return cls.create(**values)
        version = values.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ConfigError(
                f"config format {version} is not one this learntolearn reads (format {FORMAT_VERSION}, "
                f"and format 1 converted); upgrade learntolearn to read it"
            )
        algorithm = values.get("algorithm", "protonet")
        if not isinstance(algorithm, str):
            raise ConfigError(f"config key 'algorithm' must be a registered name, got {algorithm!r}")
        algorithm_type = ALGORITHMS.get(algorithm).Config
        unknown = [k for k in values if k not in (*TOP_KEYS, algorithm)]
        if unknown:
            sections = [k for k in unknown if k in ALGORITHMS]
            if sections:
                raise ConfigError(
                    f"the config has settings for {', '.join(sections)} but its algorithm is {algorithm}; "
                    f"put {algorithm}'s settings under '{algorithm}:'"
                )
            raise unknown_keys_error(unknown, [*TOP_KEYS, algorithm], "config")
        backbone = values.get("backbone", "conv4")
        if not isinstance(backbone, str):
            raise ConfigError(f"config key 'backbone' must be a registered name, got {backbone!r}")
        return cls(
            algorithm,
            backbone,
            EpisodesConfig.from_dict(values.get("episodes") or {}),
            RunConfig.from_dict(values.get("run") or {}),
            algorithm_type.from_dict(values.get(algorithm) or {}),
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> TrainConfig:
        return cls.from_dict(read_yaml(path))

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "algorithm": self.algorithm,
            "backbone": self.backbone,
            "episodes": self.episodes.to_dict(),
            "run": self.run.to_dict(),
            self.algorithm: self.algorithm_settings.to_dict(),
        }

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def flat(self) -> dict[str, Any]:
        """All keys in one mapping (the form :meth:`create` takes)."""
        return {
            "algorithm": self.algorithm,
            "backbone": self.backbone,
            **self.episodes.to_dict(),
            **self.run.to_dict(),
            **self.algorithm_settings.to_dict(),
        }


def flat_keys(algorithm: str) -> list[str]:
    """Every flat key of a config of ``algorithm`` (see :meth:`TrainConfig.create`)."""
    return [
        "algorithm",
        "backbone",
        *EpisodesConfig.keys(),
        *RunConfig.keys(),
        *ALGORITHMS.get(algorithm).Config.keys(),
    ]


def is_nested(values: Mapping[str, Any]) -> bool:
    """Whether a config mapping is format 2 (groups) rather than format 1 (flat)."""
    return (
        "format_version" in values
        or any(isinstance(values.get(k), Mapping) for k in ("episodes", "run"))
        or any(isinstance(v, Mapping) and k in ALGORITHMS for k, v in values.items())
    )


def merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied; nested mappings merge key by key."""
    merged = dict(base)
    for key, value in changes.items():
        merged[key] = (
            merge(merged[key], value) if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping) else value
        )
    return merged


# -- format 1 ------------------------------------------------------------------------------------
#: format-1 keys that only some algorithms read; the others ignored them, so conversion drops them
_FORMAT1_READERS = {
    **{k: ("maml", "anil", "metasgd", "reptile", "metalstm") for k in ("inner_lr", "inner_steps", "test_inner_steps")},
    **{k: ("maml", "anil", "metasgd") for k in ("first_order", "batched", "compiled")},
    "per_step_rates": ("maml",),
    "multi_step_loss_steps": ("maml",),
    "full_context": ("matching",),
    "distance": ("matching",),
    "adapt_steps": ("baseline", "baseline++", "finetune"),
    "sequence_model": ("recurrent",),
    "memory": ("mann",),
    "inner_batch": ("reptile",),
    "inner_optimizer": ("reptile",),
}


def is_saved_format1(values: Mapping[str, Any]) -> bool:
    """Whether a flat mapping was written by learntolearn 0.1, which saved every key of every algorithm.

    Such a file is converted leniently (keys its algorithm ignored are dropped); a flat mapping written
    by hand is read strictly, like command-line options.
    """
    return len(set(values) & set(_FORMAT1_READERS)) >= 10


def convert_flat_config(values: Mapping[str, Any]) -> dict[str, Any]:
    """A format-1 (flat) config as format 2, keeping exactly the keys its algorithm read."""
    algorithm = values.get("algorithm", "protonet")
    known = {"algorithm", "backbone", *EpisodesConfig.keys(), *RunConfig.keys(), *_FORMAT1_READERS}
    unknown = [k for k in values if k not in known]
    if unknown:
        raise unknown_keys_error(unknown, sorted(known), "config")
    if not isinstance(algorithm, str):
        raise ConfigError(f"config key 'algorithm' must be a registered name, got {algorithm!r}")
    own = ALGORITHMS.get(algorithm).Config.keys()
    return {
        "format_version": FORMAT_VERSION,
        "algorithm": algorithm,
        "backbone": values.get("backbone", "conv4"),
        "episodes": {k: v for k, v in values.items() if k in EpisodesConfig.keys()},
        "run": {k: v for k, v in values.items() if k in RunConfig.keys()},
        algorithm: {k: v for k, v in values.items() if k in own and algorithm in _FORMAT1_READERS.get(k, ())},
    }


# -- files ---------------------------------------------------------------------------------------
class _Loader(yaml.SafeLoader):
    """YAML 1.2 floats: PyYAML (YAML 1.1) reads ``1e-3`` as a string, which a config must not."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?\d+\.\d*$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$"),
    list("-+0123456789."),
)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """The mapping in a YAML file, with errors that name the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        values = yaml.load(path.read_text(encoding="utf-8-sig"), Loader=_Loader)
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ConfigError(f"config file {path} must hold a mapping of key: value lines, got {type(values).__name__}")
    return values
