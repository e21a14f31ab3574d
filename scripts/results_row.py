"""Print README result rows from finished runs: the test result of each run and every `ltl eval` of it.

    python scripts/results_row.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def rows(run_dir: Path) -> list[str]:
    r = json.loads((run_dir / "results.json").read_text())
    trained = json.loads((run_dir / "provenance.json").read_text())
    c = r["config"]
    train = f"{c['train_ways'] or c['ways']}-way, {c['train_queries'] or c['queries']} queries, {r['steps']} steps"
    hours = f"{r['train_seconds'] / 3600:.2f} h, {trained['threads']} thread(s)"
    common = f"{train} | {hours} | {c['seed']} | `{trained['commit'][:10]}`"
    lines = [f"| {c['algorithm']} | {c['dataset']} {c['split']}/{c['test_subset']} {c['ways']}-way {c['shots']}-shot "
             f"(at the end of training, `{r['commit'][:10]}`) | {100 * r['test_accuracy']:.2f} ± {100 * r['test_ci95']:.2f} | "
             f"{r['episodes']} | {common} |"]
    evaluations = run_dir / "evaluations.jsonl"
    for line in evaluations.read_text().splitlines() if evaluations.exists() else []:
        e = json.loads(line)
        lines.append(f"| {c['algorithm']} | {e['evaluation']} (`ltl eval`, `{e['commit'][:10]}`) | "
                     f"{100 * e['accuracy']:.2f} ± {100 * e['ci95']:.2f} | {e['episodes']} | {common} |")
    return lines


if __name__ == "__main__":
    print("| algorithm | evaluation | accuracy % (95% CI) | episodes | training | train time | seed | trained at |")
    print("|---|---|---|---|---|---|---|---|")
    for arg in sys.argv[1:]:
        print("\n".join(rows(Path(arg))))
