"""Resumable result files built in parts by several processes (one per core), merged before the evaluation."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from learntolearn.engine.evaluate import confidence_interval
from learntolearn.files import load_tensors, write_json
from learntolearn.rl.runs import PRESETS, evaluate_rl2


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


def rl2_columns(
    runs: Sequence[Path],
    table: Path,
    row: str,
    tasks: int,
    seed: int,
    task: str,
    column_of: Callable[[dict], str],
    value_of: Callable[[float], Any],
) -> tuple[dict[str, list], list[dict]]:
    """The RL² row of a reference table: each of ``runs`` (RL² runs on ``task``) scored on the table's ``tasks``
    (its column named by ``column_of(config)``, totals through ``value_of``), plus the columns of the table
    written earlier at ``table`` that none of them replaces; with the run records of both."""
    columns: dict[str, list] = {}
    records: list[dict] = []
    for run in runs:
        checkpoint = load_tensors(run / "checkpoint.pt", "RL² checkpoint")
        config = checkpoint["config"]
        if config["task"] != task:
            raise SystemExit(f"{run} is an RL² {config['task']} run; this table scores {task} runs")
        scored = evaluate_rl2(run, tasks=tasks, seed=seed)
        column = column_of(config)
        columns[column] = [value_of(v) for v in scored["totals"]]
        records.append(
            {
                "column": column,
                "config": config,
                "iteration": scored["iteration"],
                "cpu_seconds": scored["cpu_seconds"],
                "training_curve": curve_means(checkpoint.get("history") or []),
            }
        )
    kept, kept_records = kept_columns(table, row, tasks, seed, set(columns))
    return {**columns, **kept}, records + kept_records


#: PPO iterations per point of the training curves the tables record
CURVE_WINDOW = 50


def curve_means(history: Sequence[float]) -> list[float]:
    """Mean total reward per trial over each ``CURVE_WINDOW`` iterations of a run's history (the last window
    may be shorter), one decimal."""
    windows = [history[i : i + CURVE_WINDOW] for i in range(0, len(history), CURVE_WINDOW)]
    return [round(sum(w) / len(w), 1) for w in windows]


def curves_note(records: Sequence[dict]) -> str:
    """A sentence with the training curve of each RL² column that recorded one ('' if none)."""
    curves = [
        f"{r['column']}: {', '.join(f'{v:g}' for v in r['training_curve'])}" for r in records if r.get("training_curve")
    ]
    if not curves:
        return ""
    return (
        f" Training curves (mean total reward per trial of the training tasks, per {CURVE_WINDOW} PPO iterations, "
        f"from the runs' checkpoints): {'; '.join(curves)}."
    )


def partial_note(records: Sequence[dict]) -> str:
    """A sentence naming the RL² columns whose run stopped short of its preset's iterations ('' if none)."""
    short = []
    for record in records:
        config = record["config"]
        planned = PRESETS[config["name"]].iterations if config["name"] in PRESETS else config["iterations"]
        if record["iteration"] < planned:
            short.append(f"{record['column']} ({record['iteration']:,} of {planned:,})")
    return f" Partial RL² runs, scored at the iteration they reached: {', '.join(short)}." if short else ""


def rl2_note(records: Sequence[dict], tasks_noun: str) -> str:
    """The table note's sentences on the RL² row: what it is, which columns were kept, partial runs and curves."""
    if not records:
        return "RL² rows follow when trained."
    kept = [r["column"] for r in records if "kept_from" in r]
    return (
        f"RL² (GRU 256, PPO; run settings, iterations and CPU time in the JSON) is scored on the same {tasks_noun}; "
        "— where not trained."
        + (f" Kept from earlier tables (run folders not given): {', '.join(kept)}." if kept else "")
        + partial_note(records)
        + curves_note(records)
    )


def mean_and_interval(values: Sequence[float]) -> str:
    """``mean ± half-width of the normal 95% interval``, one decimal."""
    array = np.asarray(values, dtype=np.float64)
    return f"{array.mean():.1f} ± {confidence_interval(torch.from_numpy(array)):.1f}"


def totals_table(totals: dict[str, dict[str, list]], columns: dict[str, str]) -> list[str]:
    """Markdown rows: each learner's mean total per column (``columns``: key in ``totals`` -> header), — where
    the learner has no totals."""
    lines = ["| learner | " + " | ".join(columns.values()) + " |", "|---|" + "---|" * len(columns)]
    for name, by_column in totals.items():
        cells = [mean_and_interval(by_column[c]) if c in by_column else "—" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def totals_and_paired(
    totals: dict[str, dict[str, list]], row: str, columns: dict[str, str], tasks_noun: str
) -> list[str]:
    """:func:`totals_table`, then :func:`paired_table` of ``row`` under a sentence saying what it pairs."""
    lines = totals_table(totals, columns)
    paired = paired_table(totals, row, columns)
    if paired:
        lines += [
            "",
            f"Paired differences on the same {tasks_noun}, {row.split(' (')[0]} minus each learner "
            "(mean ± 95% interval):",
            "",
        ]
        lines += paired
    return lines


def paired_table(totals: dict[str, dict[str, list]], row: str, columns: dict[str, str]) -> list[str]:
    """Markdown rows: ``row`` minus each other learner, task by task on the same tasks (mean ± 95% interval of
    the per-task differences); none when ``row`` has no totals."""
    if row not in totals:
        return []
    lines = [
        f"| {row} minus | " + " | ".join(columns.values()) + " |",
        "|---|" + "---|" * len(columns),
    ]
    for name, by_column in totals.items():
        if name == row:
            continue
        cells = [
            mean_and_interval(np.subtract(totals[row][c], by_column[c])) if c in totals[row] and c in by_column else "—"
            for c in columns
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines
