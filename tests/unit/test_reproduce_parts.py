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


def test_kept_columns_come_only_from_a_table_on_the_same_tasks_and_yield_to_runs_scored_now(tmp_path):
    table = tmp_path / "table.json"
    assert parts.kept_columns(table, "RL²", 100, 0, set()) == ({}, [])
    runs = [{"column": "n=10", "iteration": 5}, {"column": "n=25", "iteration": 7}]
    written = {
        "tasks": 100,
        "seed": 0,
        "commit": "abc",
        "rl2_runs": runs,
        "totals": {"RL²": {"n=10": [1], "n=25": [2]}},
    }
    table.write_text(json.dumps(written))
    columns, kept = parts.kept_columns(table, "RL²", 100, 0, {"n=25"})
    assert columns == {"n=10": [1]} and kept == [{"column": "n=10", "iteration": 5, "kept_from": "abc"}]
    assert parts.kept_columns(table, "RL²", 1000, 0, set()) == ({}, []), "other tasks would not pair"
    assert parts.kept_columns(table, "RL²", 100, 1, set()) == ({}, [])
