"""Command-line options generated from the config groups' fields: a new field needs no CLI edit."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

import click
import torch

from learntolearn.algorithms.base import ALGORITHMS
from learntolearn.engine.config import (
    TOP_KEYS,
    EpisodesConfig,
    RunConfig,
    TrainConfig,
    convert_flat_config,
    is_nested,
    is_saved_format1,
)
from learntolearn.errors import ConfigError
from learntolearn.settings import Settings


def _option(f: dataclasses.Field, users: list[str] | None) -> Callable:
    """One click option for a settings field; ``users`` names the algorithms that have it (None: every run)."""
    meta, kind = f.metadata, str(f.type)
    help_text = meta.get("help", "")
    if users is not None:
        help_text += f" [{', '.join(users)}]"
    name = "--" + f.name.replace("_", "-")
    if kind == "bool":
        return click.option(f"{name}/--no-{f.name.replace('_', '-')}", default=None, help=help_text)
    if meta.get("choices"):
        kind_type: Any = click.Choice(meta["choices"])
    elif "int" in kind:
        kind_type = click.IntRange(min=meta.get("minimum"), max=meta.get("maximum"))
    elif "float" in kind:
        kind_type = click.FloatRange(min=meta.get("minimum"), max=meta.get("maximum"))
    else:
        kind_type = str
    if users is None and f.default is not None:
        help_text += f"  [default: {f.default}]"
    return click.option(name, type=kind_type, default=None, help=help_text)


def config_options(function: Callable) -> Callable:
    """Add an option for every key of the episodes, the run and every algorithm's settings."""
    fields: list[tuple[dataclasses.Field, list[str] | None]] = []
    for group in (EpisodesConfig, RunConfig):
        fields += [(f, None) for f in dataclasses.fields(group)]
    by_name: dict[str, tuple[dataclasses.Field, list[str]]] = {}
    for name in ALGORITHMS.names():
        for f in dataclasses.fields(ALGORITHMS.get(name).Config):
            by_name.setdefault(f.name, (f, []))[1].append(name)
    fields += [(f, users) for f, users in by_name.values()]
    for f, users in reversed(fields):
        function = _option(f, users)(function)
    return function


def flat_keys_of(values: Mapping[str, Any], source: str) -> dict[str, Any]:
    """A config mapping (format 2, a flat mapping, or a saved format-1 config) as flat keys."""
    if not is_nested(values):
        if not is_saved_format1(values):
            return dict(values)
        values = convert_flat_config(values)
    algorithm = values.get("algorithm")
    flat = {k: values[k] for k in ("algorithm", "backbone") if k in values}
    for key, section in values.items():
        if key in ("episodes", "run") or (key in ALGORITHMS and key not in TOP_KEYS):
            if algorithm is not None and key in ALGORITHMS and key != algorithm:
                raise ConfigError(f"{source} has settings for {key} but its algorithm is {algorithm}")
            if not isinstance(section, Mapping):
                raise ConfigError(f"{source}: '{key}' must be a mapping of key: value")
            flat.update(section)
        elif key not in TOP_KEYS:
            raise ConfigError(
                f"{source}: unknown top-level key {key!r}; valid: {', '.join(TOP_KEYS)} and the algorithm's name"
            )
    return flat


def resolve(layers: list[Mapping[str, Any]]) -> TrainConfig:
    """The config from layers of flat keys, each overriding the one before; when a layer changes the
    algorithm, the earlier layers' settings of the old algorithm are dropped."""
    merged: dict[str, Any] = {}
    for layer in layers:
        new_algorithm = layer.get("algorithm")
        if new_algorithm is not None and new_algorithm != merged.get("algorithm") and "algorithm" in merged:
            own = set(ALGORITHMS.get(merged["algorithm"]).Config.keys())
            merged = {k: v for k, v in merged.items() if k not in own}
        merged.update(layer)
    return TrainConfig.create(**merged)


def settings_table(group: type[Settings]) -> list[str]:
    """One line per field: name, default and help."""
    return [
        f"  --{f.name.replace('_', '-'):<24} {f.default!s:<8} {f.metadata.get('help', '')}"
        for f in dataclasses.fields(group)
    ]


def default_threads() -> int:
    """Half the cores: a run that shares the machine with another job keeps its speed (one thread per core
    collapses when another process holds a core), and a run alone on it loses little."""
    return max(1, (os.cpu_count() or 2) // 2)


def _set_threads(ctx: click.Context, param: click.Parameter, value: int) -> int:
    torch.set_num_threads(value)
    return value


threads_option = click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=default_threads,
    show_default="half the cores",
    expose_value=False,
    callback=_set_threads,
    help="CPU threads of this process (recorded in each run's provenance); one per core slows badly when "
    "another job holds a core.",
)
data_root_option = click.option(
    "--data-root",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder holding <name>/ data sets (default: $LTL_DATA, else ~/.cache/learntolearn).",
)
download_option = click.option(
    "--download/--no-download",
    default=True,
    show_default=True,
    help="Fetch missing official archives (checksum-verified).",
)
