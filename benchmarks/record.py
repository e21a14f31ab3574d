"""Append a benchmark record, with provenance, to benchmarks/results/<name>.jsonl and print it."""

from __future__ import annotations

import json
import time
from pathlib import Path

from learntolearn.engine.trainer import provenance

RESULTS = Path(__file__).parent / "results"


def append(name: str, record: dict) -> dict:
    record = {"benchmark": name, **record, "date": time.strftime("%Y-%m-%d"), **provenance()}
    print(json.dumps(record), flush=True)
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / f"{name}.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")
    return record
