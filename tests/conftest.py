"""Shared fixtures: the real data root (or a skip that says why), seeds, small thread counts."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from helpers import real_data_root


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under `-n N --dist loadgroup`, refuse to run if xdist failed to tag its groups (it did, silently, with
    pytest 9.2): tests that start processes of their own would then run side by side and could stall CI."""
    if not config.getoption("loadgroup", default=False):
        return
    lost = [item.nodeid for item in items if item.get_closest_marker("xdist_group") and "@" not in item.nodeid]
    if lost:
        raise pytest.UsageError(f"pytest-xdist did not group {lost[0]} (and {len(lost) - 1} more); check its version")


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = real_data_root()
    if root is None:
        pytest.skip(
            "real Omniglot archives not found: set LTL_DATA to a folder holding "
            "omniglot/images_background.zip (CI uses ../shared/data)"
        )
    return root


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _no_user_data_root(monkeypatch, tmp_path) -> None:
    """Tests never touch the user's cache: the default root points into a temporary folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
