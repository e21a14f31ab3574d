"""Print the README results row of finished runs from their results.json (never typed by hand).

    python scripts/results_row.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def row(run_dir: Path) -> str:
    r = json.loads((run_dir / "results.json").read_text())
    trained = json.loads((run_dir / "provenance.json").read_text())
    c = r["config"]
    setting = f"{c['ways']}-way {c['shots']}-shot"
    train = f"{c['train_ways'] or c['ways']}-way, {c['train_queries'] or c['queries']} queries, {r['steps']} steps"
    hours = r["train_seconds"] / 3600
    return (f"| {c['algorithm']} | {c['dataset']} {c['split']}/{c['test_subset']} | {setting} | "
            f"{100 * r['test_accuracy']:.2f} ± {100 * r['test_ci95']:.2f} | {r['episodes']} | {train} | "
            f"{hours:.2f} h on {r['cores']} cores ({r['threads']} threads) | {c['seed']} | `{trained['commit'][:10]}` |")


if __name__ == "__main__":
    print("| algorithm | data | test setting | accuracy % (95% CI) | test episodes | training | train time | seed | commit |")
    print("|---|---|---|---|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        print(row(Path(arg)))
