"""Print a run's validation accuracy against training hours as a Markdown table.

python scripts/validation_curve.py RUN_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

from learntolearn.engine.metrics import read_metrics


def curve(run_dir: Path) -> None:
    records = read_metrics(run_dir)
    hours = {r["step"]: r["train_seconds"] / 3600 for r in records if "train_seconds" in r}
    print("| step | training hours | validation accuracy % (95% CI) |")
    print("|---|---|---|")
    for r in records:
        if "val_accuracy" in r:
            print(
                f"| {r['step']} | {hours[r['step']]:.2f} | {100 * r['val_accuracy']:.2f} ± {100 * r['val_ci95']:.2f} |"
            )


if __name__ == "__main__":
    curve(Path(sys.argv[1]))
