"""Typed, frozen groups of settings: each field carries its help text and its valid values.

Every part of a run config (the episodes, the run, each algorithm's own settings) is a frozen
dataclass of fields made with :func:`setting`. The command line builds its options from these
fields, so a new field needs no edit anywhere else; a mapping with a key the group does not have is
refused with the closest valid key and the full list.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from learntolearn.errors import ConfigError, UnknownNameError

S = TypeVar("S", bound="Settings")

_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "int | None": (int, type(None)),
    "float | None": (int, float, type(None)),
    "str | None": (str, type(None)),
}


def setting(
    default: Any,
    help: str,
    *,
    choices: tuple[str, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
) -> Any:
    """A dataclass field with its help text, and optionally the values it may take."""
    return dataclasses.field(
        default=default, metadata={"help": help, "choices": choices, "minimum": minimum, "maximum": maximum}
    )


def unknown_keys_error(unknown: list[str], known: list[str], where: str) -> UnknownNameError:
    """The error for keys that are not among ``known``: each with its closest valid key, then the full list."""
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(str(key), known, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return UnknownNameError(f"unknown {where} key(s) {', '.join(hints)}; valid keys: {', '.join(known) or 'none'}")


@dataclasses.dataclass(frozen=True)
class Settings:
    """Base of the setting groups: checks types and valid values on construction, then :meth:`check`."""

    #: what the group is called in error messages and in config files
    section: ClassVar[str] = "settings"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            types = _TYPES[str(f.type)]
            if not isinstance(value, types) or (f.type != "bool" and isinstance(value, bool)):
                raise ConfigError(
                    f"{self.section} key {f.name!r} must be {f.type}, got {value!r} ({type(value).__name__})"
                )
            if "float" in str(f.type) and isinstance(value, int):
                object.__setattr__(self, f.name, float(value))
            meta = f.metadata
            if meta.get("choices") and value not in meta["choices"]:
                raise ConfigError(
                    f"{self.section} key {f.name!r}: unknown {value!r}; valid: {', '.join(meta['choices'])}"
                )
            if value is not None and not isinstance(value, (str, bool)):
                if meta.get("minimum") is not None and value < meta["minimum"]:
                    raise ConfigError(f"{self.section} key {f.name!r} must be >= {meta['minimum']}, got {value}")
                if meta.get("maximum") is not None and value > meta["maximum"]:
                    raise ConfigError(f"{self.section} key {f.name!r} must be <= {meta['maximum']}, got {value}")
        self.check()

    def check(self) -> None:
        """Rules between fields; raise :class:`ConfigError` naming the keys and the fix."""

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls: type[S], values: Mapping[str, Any]) -> S:
        """Build from a mapping; a key the group does not have is an error naming the keys it has."""
        if not isinstance(values, Mapping):
            raise ConfigError(f"{cls.section} must be a mapping of key: value, got {type(values).__name__}")
        unknown = [k for k in values if k not in cls.keys()]
        if unknown:
            raise unknown_keys_error(unknown, cls.keys(), cls.section)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self: S, **changes: Any) -> S:
        return dataclasses.replace(self, **changes)
