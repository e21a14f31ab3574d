"""Where data sets live: ``--data-root``, else ``$LTL_DATA``, else a per-user cache folder."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "LTL_DATA"


def default_cache_root() -> Path:
    """The per-user cache folder (``$XDG_CACHE_HOME/learntolearn`` or ``~/.cache/learntolearn``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "learntolearn"


def resolve_data_root(data_root: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding data sets; a data set ``name`` lives in ``<root>/<name>/``."""
    if data_root:
        return Path(data_root).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return default_cache_root()


def describe_root_choice(data_root: str | os.PathLike[str] | None = None) -> str:
    """Say which rule chose the data root, for error messages."""
    if data_root:
        return f"--data-root {data_root}"
    if os.environ.get(ENV_VAR):
        return f"${ENV_VAR}={os.environ[ENV_VAR]}"
    return f"the default cache {default_cache_root()} (neither --data-root nor ${ENV_VAR} was set)"
