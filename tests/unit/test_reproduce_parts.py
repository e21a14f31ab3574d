"""scripts/reproduce/parts.py: result files built by several processes merge without losing or overwriting."""

import importlib.util
import json
from pathlib import Path

import pytest

spec = importlib.util.spec_from_file_location(
    "parts", Path(__file__).resolve().parents[2] / "scripts" / "reproduce" / "parts.py"
)
parts = importlib.util.module_from_spec(spec)
spec.loader.exec_module(parts)


def test_parts_merge_the_entries_the_file_lacks_and_refuse_other_settings(tmp_path):
    mine, theirs, other = tmp_path / "mine.json", tmp_path / "theirs.json", tmp_path / "other.json"
    mine.write_text(json.dumps({"settings": {"seed": 0}, "tables": {"a": 1, "b": 2}}))
    theirs.write_text(json.dumps({"settings": {"seed": 0}, "tables": {"b": 99, "c": 3}}))
    other.write_text(json.dumps({"settings": {"seed": 1}, "tables": {"d": 4}}))
    parts.merge_entries(mine, theirs, "settings", "tables")
    assert json.loads(mine.read_text())["tables"] == {"a": 1, "b": 2, "c": 3}  # b kept, c added
    with pytest.raises(SystemExit, match="other settings"):
        parts.merge_entries(mine, other, "settings", "tables")
    assert parts.part_of("1/3") == (1, 3)
    with pytest.raises(SystemExit, match="K must be in"):
        parts.part_of("3/3")
