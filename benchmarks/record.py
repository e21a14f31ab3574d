"""Append a benchmark record, with provenance, to benchmarks/results/<name>.jsonl and print it."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from learntolearn.engine.provenance import provenance

RESULTS = Path(__file__).parent / "results"


def append(name: str, record: dict) -> dict:
    record = {"benchmark": name, **record, "date": time.strftime("%Y-%m-%d"), **provenance()}
    print(json.dumps(record), flush=True)
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / f"{name}.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    return record


def interleaved_medians(
    implementations: dict[str, Callable[[], Callable]], inputs: list, rounds: int
) -> tuple[dict[str, float], dict[str, str]]:
    """Build each implementation's step function, warm it up, then time it over ``inputs`` round after round,
    interleaved with the others; the median rate (inputs per second) per implementation, and the ones that
    could not be imported with the reason."""
    steps, missing = {}, {}
    for name, build in implementations.items():
        try:
            steps[name] = build()
            steps[name](inputs[0])
        except ImportError as err:
            missing[name] = f"not installed ({err})"
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            for item in inputs:
                step(item)
            rates[name].append(len(inputs) / (time.perf_counter() - start))
    return {name: statistics.median(r) for name, r in rates.items()}, missing
