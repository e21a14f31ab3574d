"""The code in the README and the guide runs as written, and the docs name every command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


def test_the_readme_example_runs_as_written(tmp_path, monkeypatch):
    blocks = python_blocks(ROOT / "README.md")
    assert blocks, "the README has a Python example"
    monkeypatch.chdir(tmp_path)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {"__name__": "readme"})
    assert (tmp_path / "runs" / "quickstart" / "results.json").exists()


def test_the_development_guide_example_runs(tmp_path, monkeypatch):
    (block,) = python_blocks(ROOT / "docs" / "development.md")
    monkeypatch.chdir(tmp_path)
    exec(compile(block.replace("/tmp/r2d2-check", str(tmp_path / "check")), "development.md", "exec"), {})


@pytest.mark.parametrize("page", sorted((ROOT / "docs").glob("*.md")), ids=lambda p: p.name)
def test_docs_mention_no_removed_module(page):
    removed = [
        "engine/presets.py",
        "engine/reproduce.py",
        "engine/plots.py",
        "engine/checkpoint.py",
        "update_readme.py",
        "engine.presets",
        "engine.reproduce",
        "engine.plots",
    ]
    text = page.read_text()
    if page.name == "development.md":  # its table says where these moved
        return
    assert [name for name in removed if name in text] == []
