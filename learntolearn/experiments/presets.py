"""Named run configs that reproduce paper settings, one YAML file each under ``presets/``.

``ltl presets`` lists them and ``ltl train --preset NAME`` starts from one. Each file says what
the setting follows and where it deviates, and holds a complete config (every key written out, so
that a change of a default never changes a preset).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from learntolearn.engine.config import TrainConfig
from learntolearn.errors import ConfigError
from learntolearn.settings import unknown_keys_error

PRESET_DIR = Path(__file__).parent / "presets"


@dataclass(frozen=True)
class Preset:
    name: str
    follows: str
    deviates: str
    #: the config as a format-2 mapping
    values: dict[str, Any]

    @property
    def config(self) -> TrainConfig:
        return TrainConfig.from_dict(self.values)


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


@cache
def get_preset(name: str) -> Preset:
    """The preset ``name``; an unknown name lists the valid ones."""
    path = PRESET_DIR / f"{name}.yaml"
    if not path.is_file():
        raise unknown_keys_error([name], preset_names(), "preset")
    document = yaml.safe_load(path.read_text())
    if not isinstance(document, dict) or set(document) != {"follows", "deviates", "config"}:
        raise ConfigError(f"preset file {path} must hold exactly the keys follows, deviates and config")
    return Preset(name, document["follows"], document["deviates"], document["config"])
