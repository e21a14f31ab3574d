"""Resumable result files built in parts by several processes (one per core), merged before the evaluation."""

from __future__ import annotations

import json
from pathlib import Path

from learntolearn.files import write_json


def part_of(text: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)``: this process builds every N-th item from the K-th (0-based)."""
    part, parts = (int(v) for v in text.split("/"))
    if not 0 <= part < parts:
        raise SystemExit(f"--part {text}: K must be in [0, N)")
    return part, parts


def merge_entries(path: Path, other: Path, settings_key: str, entries_key: str) -> None:
    """Copy into ``path`` the entries ``other`` (a file made with the same settings) holds and ``path`` lacks."""
    mine, theirs = json.loads(path.read_text()), json.loads(other.read_text())
    if mine[settings_key] != theirs[settings_key]:
        raise SystemExit(f"{other} was made with other settings than {path}")
    added = {name: entry for name, entry in theirs[entries_key].items() if name not in mine[entries_key]}
    mine[entries_key].update(added)
    write_json(path, mine)
    print(f"merged {len(added)} entries from {other}", flush=True)


def kept_columns(path: Path, row: str, tasks: int, seed: int, replaced: set[str]) -> tuple[dict[str, list], list[dict]]:
    """The columns of ``row`` in the table written earlier at ``path``, with their run records, that no run scored
    now replaces; only when that table was scored on the same tasks, so that its totals pair with today's."""
    if not path.exists():
        return {}, []
    earlier = json.loads(path.read_text())
    if earlier.get("tasks") != tasks or earlier.get("seed") != seed:
        return {}, []
    columns = {column: v for column, v in earlier["totals"].get(row, {}).items() if column not in replaced}
    runs = [
        {**record, "kept_from": record.get("kept_from", earlier["commit"])}
        for record in earlier.get("rl2_runs", [])
        if record["column"] in columns
    ]
    return columns, runs
