"""The run config: one typed, flat dataclass, loadable from YAML and overridable from the command line.

Every run is fully described by a :class:`TrainConfig`; its run folder keeps it as ``config.json``
(JSON is YAML, so ``ltl train --config RUN/config.json`` repeats a run). Unknown keys and values of
the wrong type are rejected with the key's name.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from learntolearn.algorithms.base import ALGORITHMS
from learntolearn.algorithms.reptile import INNER_OPTIMIZERS
from learntolearn.nn.backbones import BACKBONES

OUTER_OPTIMIZERS = ("adam", "sgd")
PRECISIONS = ("float32", "bfloat16")
#: "step": halve the outer learning rate every lr_halve_every steps; "linear": anneal it linearly to 0 at the last step
LR_SCHEDULES = ("step", "linear")
#: algorithms built on MAML's meta-loss, which take ``compiled`` and bfloat16 query passes
MAML_FAMILY = ("maml", "anil", "metasgd")
_TYPES = {"str": (str,), "int": (int,), "float": (int, float), "int | None": (int, type(None)), "bool": (bool,)}


@dataclass
class TrainConfig:
    """Everything that defines a run. ``train_ways`` / ``train_shots`` / ``train_queries`` default to the test setting."""

    algorithm: str = "protonet"
    backbone: str = "conv4"
    dataset: str = "omniglot"
    split: str = "vinyals"
    train_subset: str = "train"
    val_subset: str = "val"
    test_subset: str = "test"
    image_size: int = 28
    ways: int = 5
    shots: int = 1
    queries: int = 15
    train_ways: int | None = None
    train_shots: int | None = None
    train_queries: int | None = None
    meta_batch: int = 1
    steps: int = 1000
    lr: float = 1e-3
    lr_halve_every: int = 2000
    lr_schedule: str = "step"
    val_every: int = 500
    val_episodes: int = 500
    test_episodes: int = 1000
    checkpoint_every: int = 100
    seed: int = 0
    outer_optimizer: str = "adam"
    inner_lr: float = 0.4
    inner_steps: int = 1
    test_inner_steps: int = 3
    first_order: bool = False
    batched: bool = False
    compiled: bool = False
    per_step_rates: bool = False
    multi_step_loss_steps: int = 0
    full_context: bool = False
    adapt_steps: int = 100
    patience: int = 0
    precision: str = "float32"
    sequence_model: str = "lstm"
    memory: str = "lru"
    distance: str = "cosine"
    tasks_per_backward: int = 0
    inner_batch: int = 0
    inner_optimizer: str = "sgd"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, _TYPES[f.type]) or (f.type != "bool" and isinstance(value, bool)):
                raise TypeError(f"config key {f.name!r} must be {f.type}, got {value!r} ({type(value).__name__})")
            if f.type == "float":
                setattr(self, f.name, float(value))
        ALGORITHMS.get(self.algorithm)
        BACKBONES.get(self.backbone)
        if self.outer_optimizer not in OUTER_OPTIMIZERS:
            raise ValueError(f"config key 'outer_optimizer': unknown {self.outer_optimizer!r}; "
                             f"valid: {', '.join(OUTER_OPTIMIZERS)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"config key 'precision': unknown {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        if self.precision != "float32" and ALGORITHMS.get(self.algorithm).adapts_by_gradient \
                and self.algorithm not in MAML_FAMILY:
            raise ValueError(f"precision {self.precision} is for metric-based algorithms and the query passes of "
                             f"{', '.join(MAML_FAMILY)}; {self.algorithm} adapts by gradient steps whose "
                             f"meta-gradients are only checked in float32, so leave it at float32")
        if self.compiled and self.algorithm not in MAML_FAMILY:
            raise ValueError(f"config key 'compiled' compiles the meta-training loss of {', '.join(MAML_FAMILY)}; "
                             f"{self.algorithm} has no compiled path, so leave it false")
        if self.inner_batch and self.algorithm != "reptile":
            raise ValueError(f"config key 'inner_batch' is Reptile's inner minibatch size; {self.algorithm} adapts on "
                             f"the whole support set, so leave it at 0")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"config key 'lr_schedule': unknown {self.lr_schedule!r}; valid: {', '.join(LR_SCHEDULES)}")
        if self.inner_optimizer not in INNER_OPTIMIZERS:
            raise ValueError(f"config key 'inner_optimizer': unknown {self.inner_optimizer!r}; "
                             f"valid: {', '.join(INNER_OPTIMIZERS)}")
        if self.inner_optimizer != "sgd" and self.algorithm != "reptile":
            raise ValueError(f"config key 'inner_optimizer' chooses Reptile's inner optimiser; {self.algorithm} "
                             f"differentiates through plain SGD steps, so leave it at 'sgd'")
        if self.inner_batch < 0:
            raise ValueError(f"config key 'inner_batch' must be >= 0 (0: the whole support set), got {self.inner_batch}")
        if ALGORITHMS.get(self.algorithm).adapts_by_gradient and self.train_ways not in (None, self.ways):
            raise ValueError(f"{self.algorithm} has one output per way, so train_ways ({self.train_ways}) must equal "
                             f"ways ({self.ways})")

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build from a mapping, rejecting unknown keys (with the nearest valid key) and wrong types."""
        check_keys(values)
        return cls(**values)

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: dict | None = None) -> "TrainConfig":
        """Load a YAML (or JSON) config file, then apply ``overrides`` on top."""
        return cls.from_dict({**read_yaml(path), **(overrides or {})})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def check_keys(values: dict, source: str = "config") -> None:
    """Raise ``KeyError`` naming each unknown key, its closest valid key and the full list."""
    known = TrainConfig.keys()
    unknown = [k for k in values if k not in known]
    if unknown:
        hints = []
        for key in unknown:
            close = difflib.get_close_matches(str(key), known, n=1)
            hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        raise KeyError(f"unknown {source} key(s) {', '.join(hints)}; valid keys: {', '.join(known)}")


class _Loader(yaml.SafeLoader):
    """YAML 1.2 floats: PyYAML (YAML 1.1) reads ``1e-3`` as a string, which a config must not."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^[-+]?\d+\.\d*$|^[-+]?\.(inf|Inf|INF)$|^\.(nan|NaN|NAN)$"),
    list("-+0123456789."),
)


def read_yaml(path: str | Path) -> dict:
    """The mapping in a YAML file, with errors that name the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    try:
        values = yaml.load(path.read_text(), Loader=_Loader)
    except yaml.YAMLError as err:
        raise ValueError(f"config file {path} is not valid YAML: {err}") from err
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise ValueError(f"config file {path} must hold a mapping of key: value lines, got {type(values).__name__}")
    return values
